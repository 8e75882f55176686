/**
 * The receive window we offer (net/ipv4/tcp_output.c's window half and
 * tcp_select_initial_window): from the receive buffer's free space, never
 * shrunk, scaled, and moderated under memory pressure. Kept apart from
 * tcp_output.ts, which re-exports these for its callers.
 */
import { skMemReclaim, skUnderMemoryPressure } from '../core/sock.js';
import { TCP_MAX_WSCALE } from '../../wire/tcp.js';
import type { TcpProto } from './tcp_proto.js';
import { MAX_TCP_WINDOW, type TcpSock } from './tcp_sock.js';

/** tcp_win_from_space: half of the buffer is for payload (scaling_ratio's default). */
export function tcpWinFromSpace(space: number): number {
  return space > 0 ? space >>> 1 : 0;
}

export function tcpSpace(sk: TcpSock): number {
  return tcpWinFromSpace(sk.rcvbuf - sk.rmemAlloc);
}

export function tcpFullSpace(sk: TcpSock): number {
  return tcpWinFromSpace(sk.rcvbuf);
}

/** What the peer may still send: rcv_wup + rcv_wnd - rcv_nxt (tcp_receive_window). */
export function tcpReceiveWindow(sk: TcpSock): number {
  const w = (sk.rcvWup + sk.rcvWnd - sk.rcvNxt) | 0;
  return w < 0 ? 0 : w;
}

/**
 * tcp_select_initial_window: the first window and our window scale.
 * Returns [rcvWnd, windowClamp, rcvWscale].
 */
export function tcpSelectInitialWindow(tcp: TcpProto, space: number, mss: number, windowClamp: number, wscaleOk: boolean): [number, number, number] {
  if (windowClamp === 0) windowClamp = 65535 * 2 ** TCP_MAX_WSCALE;
  space = Math.min(windowClamp, space);
  if (space > mss) space = space - (space % mss);
  let rcvWnd = tcp.sysctl.tcp_workaround_signed_windows ? Math.min(space, MAX_TCP_WINDOW) : Math.min(space, 65535);
  let rcvWscale = 0;
  if (wscaleOk) {
    let s = Math.max(space, tcp.sysctl.tcp_rmem[2], 212_992);
    s = Math.min(s, windowClamp);
    rcvWscale = Math.min(TCP_MAX_WSCALE, Math.max(0, Math.floor(Math.log2(s)) - 15));
  }
  windowClamp = Math.min(65535 * 2 ** rcvWscale, windowClamp);
  rcvWnd = Math.min(rcvWnd, windowClamp);
  return [rcvWnd, windowClamp, rcvWscale];
}

/** __tcp_select_window: the window to offer now, in bytes. */
export function tcpSelectWindowRaw(sk: TcpSock): number {
  const fullSpace = Math.min(sk.windowClamp, tcpFullSpace(sk));
  let freeSpace = tcpSpace(sk);
  let mss = sk.rcvMss;
  if (mss > fullSpace) mss = fullSpace;
  if (mss <= 0) mss = 1;
  if (freeSpace < fullSpace >> 1) {
    sk.ackQuick = 0;
    if (skUnderMemoryPressure(sk)) tcpAdjustRcvSsthresh(sk);
    freeSpace = freeSpace - (freeSpace % (1 << sk.rcvWscale));
    // Silly-window avoidance: offer nothing rather than a sliver.
    if (freeSpace < fullSpace >> 4 || freeSpace < mss) return 0;
  }
  if (freeSpace > sk.rcvSsthresh) freeSpace = sk.rcvSsthresh;
  let window = sk.rcvWnd;
  if (sk.rcvWscale) {
    window = freeSpace;
    const unit = 1 << sk.rcvWscale;
    if (window % unit) window = (Math.floor(window / unit) + 1) * unit;
  } else if (window <= freeSpace - mss || window > freeSpace) {
    window = freeSpace - (freeSpace % mss);
  } else if (mss === fullSpace && freeSpace > window + (fullSpace >> 1)) {
    window = freeSpace;
  }
  return window;
}

/** tcp_adjust_rcv_ssthresh: under memory pressure the window grows no further than four segments. */
export function tcpAdjustRcvSsthresh(sk: TcpSock): void {
  sk.rcvSsthresh = Math.min(sk.rcvSsthresh, 4 * sk.advmss);
  skMemReclaim(sk);
}

/** tcp_select_window: never shrink the offered window; returns the header's (scaled) value. */
export function tcpSelectWindow(tcp: TcpProto, sk: TcpSock): number {
  const oldWin = sk.rcvWnd;
  const curWin = tcpReceiveWindow(sk);
  let newWin = tcpSelectWindowRaw(sk);
  if (newWin < curWin) {
    const unit = 1 << sk.rcvWscale;
    newWin = Math.ceil(curWin / unit) * unit;
  }
  sk.rcvWnd = newWin;
  sk.rcvWup = sk.rcvNxt;
  if (!sk.rcvWscale && tcp.sysctl.tcp_workaround_signed_windows) newWin = Math.min(newWin, MAX_TCP_WINDOW);
  else newWin = Math.min(newWin, 65535 * 2 ** sk.rcvWscale);
  newWin = Math.floor(newWin / 2 ** sk.rcvWscale);
  if (newWin === 0) {
    if (oldWin) tcp.mibs.TcpExt.TCPToZeroWindowAdv++;
  } else if (oldWin === 0) {
    tcp.mibs.TcpExt.TCPFromZeroWindowAdv++;
  }
  return newWin;
}
