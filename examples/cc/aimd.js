// A congestion-control module for tapstack (docs/congestion.md): Reno's
// additive increase with a gentler decrease, beta = 0.8 instead of 0.5, as
// in RFC 8312's "TCP-friendly" region of CUBIC. Load it as root from a
// root-owned file:
//
//   tapstack cc load /etc/tapstack/cc/aimd.js
//   tapstack sysctl net.ipv4.tcp_congestion_control=aimd
//
// The file runs in a sandbox of its own: no require, no process, no timers.
// `sk` is a view of the socket refilled for every call (times in
// microseconds, windows in segments); setting sk.cwnd or sk.ssthresh is how
// the module acts, and the daemon checks both before it uses them.

const BETA = 0.8;

module.exports = {
  name: 'aimd',

  // A new connection (or one switched to aimd): sk.priv is its own object.
  init(sk) {
    sk.priv.reductions = 0;
    sk.priv.acked = 0;
  },

  // On loss or ECN: the new slow-start threshold. Never below 2 segments.
  ssthresh(sk) {
    sk.priv.reductions++;
    return Math.max(Math.floor(sk.cwnd * BETA), 2);
  },

  // An ACK that lets the window grow: slow start below ssthresh, then one
  // segment per window's worth of acknowledged segments.
  congAvoid(sk, acked) {
    if (!sk.cwndLimited) return;
    if (sk.cwnd < sk.ssthresh) {
      const grown = Math.min(sk.cwnd + acked, sk.ssthresh);
      acked -= grown - sk.cwnd;
      sk.cwnd = grown;
      if (acked <= 0) return;
    }
    sk.priv.acked += acked;
    if (sk.priv.acked >= sk.cwnd) {
      sk.priv.acked -= sk.cwnd;
      sk.cwnd += 1;
    }
  },

  // A reduction turned out to be spurious: go back to the window before it.
  undoCwnd(sk) {
    return Math.max(sk.cwnd, sk.priorCwnd);
  },

  // What `tapstack ss -i` shows after the name: aimd:(reductions:N,acked:M).
  getInfo(sk) {
    return { reductions: sk.priv.reductions, acked: sk.priv.acked };
  },
};
