/**
 * /proc/net/tcp and /proc/net/tcp6 of the run's stack, in the kernel's
 * format (tcp4_seq_show / tcp6_seq_show with get_tcp4_sock,
 * get_openreq4, get_timewait4_sock), for the scripts' shell lines that
 * read them (`grep " 0A " /proc/net/tcp ...`). Fields the stack has no
 * notion of (timers, inode, uid) are 0, the socket pointer is hidden as
 * with kptr_restrict.
 */
import type { InetSock } from '../../src/net/core/sock.js';
import { TCP_LISTEN, TCP_NEW_SYN_RECV, TCP_SYN_RECV, TCP_TIME_WAIT } from '../../src/net/core/sock.js';
import type { TcpProto } from '../../src/net/ipv4/tcp_proto.js';
import { TcpSock, TcpTimewaitSock } from '../../src/net/ipv4/tcp_sock.js';
import { AF_INET, AF_INET6 } from '../../src/uapi.js';

const hex8 = (v: number) => (v >>> 0).toString(16).toUpperCase().padStart(8, '0');
const hex4 = (v: number) => v.toString(16).toUpperCase().padStart(4, '0');
const hex2 = (v: number) => v.toString(16).toUpperCase().padStart(2, '0');

/** An IPv4 address as the kernel prints __be32 with %08X on a little-endian machine. */
function addr4(a: number): string {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(a >>> 0, 0);
  return hex8(b.readUInt32LE(0));
}

/** An IPv6 address as four %08X words of its __be32s. */
function addr6(a: Uint8Array | null): string {
  const b = Buffer.from(a ?? new Uint8Array(16));
  let s = '';
  for (let i = 0; i < 16; i += 4) s += hex8(b.readUInt32LE(i));
  return s;
}

/** The text of /proc/net/tcp (v6 false) or /proc/net/tcp6 (v6 true). */
export function procNetTcp(tcp: TcpProto, v6: boolean): string {
  const lines = [
    v6
      ? '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode'
      : '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
  ];
  const socks: InetSock[] = [...tcp.hashinfo.sockets()].filter((s) => s.family === (v6 ? AF_INET6 : AF_INET));
  // The listening hash first, as the seq_file walks it.
  socks.sort((a, b) => Number(b.state === TCP_LISTEN) - Number(a.state === TCP_LISTEN));
  let sl = 0;
  for (const s of socks) {
    let st = s.state;
    let txq = 0;
    let rxq = 0;
    let refcnt = 0;
    if (s instanceof TcpSock) {
      if (st === TCP_LISTEN) rxq = s.acceptQueue.length;
      else {
        txq = (s.writeSeq - s.sndUna) >>> 0;
        rxq = Math.max(0, (s.rcvNxt - s.copiedSeq) | 0);
      }
      refcnt = 2;
    } else if (st === TCP_NEW_SYN_RECV) st = TCP_SYN_RECV;
    else if (st === TCP_TIME_WAIT && s instanceof TcpTimewaitSock) st = s.substate;
    const local = v6 ? addr6(s.v6RcvSaddr) : addr4(s.rcvSaddr);
    const rem = v6 ? addr6(s.v6Daddr) : addr4(s.daddr);
    lines.push(
      `${String(sl++).padStart(4)}: ${local}:${hex4(s.num)} ${rem}:${hex4(s.dport)} ${hex2(st)} ${hex8(txq)}:${hex8(rxq)} 00:00000000 00000000 ${String(0).padStart(5)} ${String(0).padStart(8)} 0 ${refcnt} 0000000000000000 0 0 0 10 -1`,
    );
  }
  return lines.join('\n') + '\n';
}
