/**
 * The packetdrill script language: a lexer and a recursive-descent parser
 * written from packetdrill's grammar (syntax.md) and the scripts. A script
 * is options (`--name=value`), then events: a time, then a packet (`<`
 * inbound, `>` outbound), a system call, a shell command in backquotes, or
 * a `%{ }%` code block.
 */

export type Tok =
  | { t: 'num'; v: number; text: string; line: number }
  | { t: 'word'; v: string; line: number }
  | { t: 'str'; v: string; line: number }
  | { t: 'cmd'; v: string; line: number }
  | { t: 'code'; v: string; line: number }
  | { t: 'opt'; v: string; line: number }
  | { t: 'ell'; line: number }
  | { t: 'p'; v: string; line: number }
  | { t: 'eof'; line: number };

export class ParseError extends Error {
  constructor(
    readonly line: number,
    msg: string,
  ) {
    super(msg);
  }
}

const PUNCT = '<>()[]{}=,|:~+-*.;/';

export function lex(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  let line = 1;
  let lineStart = true;
  const n = src.length;
  while (i < n) {
    const c = src[i];
    if (c === '\n') {
      line++;
      i++;
      lineStart = true;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    if (c === '/' && src[i + 1] === '/') {
      while (i < n && src[i] !== '\n') i++;
      continue;
    }
    if (c === '/' && src[i + 1] === '*') {
      const e = src.indexOf('*/', i + 2);
      const end = e < 0 ? n : e + 2;
      for (let k = i; k < end; k++) if (src[k] === '\n') line++;
      i = end;
      continue;
    }
    const at = line;
    if (c === '%' && src[i + 1] === '{') {
      const e = src.indexOf('}%', i + 2);
      if (e < 0) throw new ParseError(at, 'unterminated %{ code block');
      const body = src.slice(i + 2, e);
      for (const ch of body) if (ch === '\n') line++;
      out.push({ t: 'code', v: body, line: at });
      i = e + 2;
      lineStart = false;
      continue;
    }
    if (c === '`') {
      const e = src.indexOf('`', i + 1);
      if (e < 0) throw new ParseError(at, 'unterminated backquoted command');
      const body = src.slice(i + 1, e);
      for (const ch of body) if (ch === '\n') line++;
      out.push({ t: 'cmd', v: body, line: at });
      i = e + 1;
      lineStart = false;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      let s = '';
      while (j < n && src[j] !== '"') {
        if (src[j] === '\\' && j + 1 < n) {
          const e = src[j + 1];
          s += e === 'n' ? '\n' : e === 't' ? '\t' : e;
          j += 2;
        } else s += src[j++];
      }
      if (j >= n) throw new ParseError(at, 'unterminated string');
      out.push({ t: 'str', v: s, line: at });
      i = j + 1;
      lineStart = false;
      continue;
    }
    if (lineStart && c === '-' && src[i + 1] === '-') {
      let j = i + 2;
      while (j < n && !/\s/.test(src[j])) j++;
      out.push({ t: 'opt', v: src.slice(i + 2, j), line: at });
      i = j;
      continue;
    }
    lineStart = false;
    if (c === '.' && src[i + 1] === '.' && src[i + 2] === '.') {
      out.push({ t: 'ell', line: at });
      i += 3;
      continue;
    }
    const num = /^(0x[0-9a-fA-F]+|\d+\.\d*|\d+|\.\d+)/.exec(src.slice(i, i + 40));
    if (num && !(num[1].endsWith('.') && src[i + num[1].length] === '.')) {
      // "0..." is 0 then an ellipsis; "1." alone is 1.0.
      const text = num[1];
      const v = text.startsWith('0x') ? parseInt(text, 16) : Number(text);
      out.push({ t: 'num', v, text, line: at });
      i += text.length;
      continue;
    }
    if (num) {
      const text = num[1].slice(0, -1);
      out.push({ t: 'num', v: Number(text), text, line: at });
      i += text.length;
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < n && /[A-Za-z0-9_]/.test(src[j])) j++;
      out.push({ t: 'word', v: src.slice(i, j), line: at });
      i = j;
      continue;
    }
    if (PUNCT.includes(c)) {
      out.push({ t: 'p', v: c, line: at });
      i++;
      continue;
    }
    throw new ParseError(at, `unexpected character '${c}'`);
  }
  out.push({ t: 'eof', line });
  return out;
}

// --- the script's tree ----------------------------------------------------------

export type Expr =
  | { k: 'ell' }
  | { k: 'int'; v: number }
  | { k: 'word'; v: string }
  | { k: 'str'; v: string }
  | { k: 'list'; items: Expr[] }
  | { k: 'struct'; fields: Field[] }
  | { k: 'or'; items: Expr[] };

/** A struct member: `name=value`, `name(arg)=value`, or a bare value. */
export interface Field {
  name?: string;
  arg?: Expr;
  value: Expr;
}

export interface TcpOpt {
  kind: 'nop' | 'eol' | 'mss' | 'wscale' | 'sackOK' | 'sack' | 'TS' | 'md5' | 'fo' | 'foexp';
  v?: number;
  val?: number;
  ecr?: number;
  blocks?: [number, number][];
  /** A Fast Open cookie: hex digits, or a name the run defines (TFO_COOKIE); absent for a cookie request. */
  cookie?: string;
}

/** An inbound ICMP error: type and code names as packetdrill spells them, the echoed segment's range. */
export interface IcmpSpec {
  type: string;
  code?: string;
  mtu?: number;
  /** The echoed TCP segment's sequence (the stack's, script-relative) and payload length; 0 and 0 when absent. */
  seq?: number;
  len?: number;
}

export interface PacketSpec {
  dir: '<' | '>';
  /** IP ECN codepoint asked for: 'noecn' | 'ect0' | 'ect1' | 'ce' | 'ect01', or undefined (not checked). */
  ecn?: string;
  proto: 'tcp' | 'udp' | 'icmp';
  icmp?: IcmpSpec;
  flags: string;
  seq: number;
  end: number;
  len: number;
  ack?: number;
  win?: number;
  urg?: number;
  /** undefined: no options; null: `<...>` (any). */
  opts?: TcpOpt[] | null;
}

export interface SyscallSpec {
  name: string;
  args: Expr[];
  ret: Expr;
  errno?: string;
  note?: string;
}

export interface EventTime {
  /** 'abs' | 'rel' (+N) | 'any' (*). */
  type: 'abs' | 'rel' | 'any';
  t: number;
  /** N~M / +N~+M: the end of the allowed range (same type as t). */
  end?: number;
  /** `...T`: a blocking call's end time. */
  blockEnd?: number;
}

export type Action =
  | { k: 'packet'; p: PacketSpec }
  | { k: 'syscall'; s: SyscallSpec }
  | { k: 'cmd'; cmd: string }
  | { k: 'code'; code: string };

export interface Event {
  line: number;
  time: EventTime;
  action: Action;
  /** The source text, for messages. */
  text: string;
}

export interface Script {
  options: Map<string, string>;
  /** Commands before the first timed event (init) and after the last (cleanup). */
  init: { cmd: string; line: number }[];
  cleanup: { cmd: string; line: number }[];
  events: Event[];
}

class Parser {
  i = 0;
  constructor(
    readonly toks: Tok[],
    readonly lines: string[],
  ) {}

  peek(o = 0): Tok {
    return this.toks[Math.min(this.i + o, this.toks.length - 1)];
  }
  next(): Tok {
    return this.toks[this.i++];
  }
  isP(v: string, o = 0): boolean {
    const t = this.peek(o);
    return t.t === 'p' && t.v === v;
  }
  isWord(v: string, o = 0): boolean {
    const t = this.peek(o);
    return t.t === 'word' && t.v === v;
  }
  err(msg: string, t = this.peek()): never {
    throw new ParseError(t.line, msg + ` (at ${describe(t)})`);
  }
  expectP(v: string): void {
    if (!this.isP(v)) this.err(`expected '${v}'`);
    this.i++;
  }
  num(): number {
    let neg = false;
    if (this.isP('-')) {
      neg = true;
      this.i++;
    }
    const t = this.next();
    if (t.t !== 'num') this.err('expected a number', t);
    return neg ? -t.v : t.v;
  }
  word(): string {
    const t = this.next();
    if (t.t !== 'word') this.err('expected a word', t);
    return t.v;
  }

  script(): Script {
    const options = new Map<string, string>();
    while (this.peek().t === 'opt') {
      const o = (this.next() as { v: string }).v;
      const eq = o.indexOf('=');
      options.set(eq < 0 ? o : o.slice(0, eq), eq < 0 ? '' : o.slice(eq + 1));
    }
    const init: { cmd: string; line: number }[] = [];
    while (this.peek().t === 'cmd') {
      const t = this.next() as { v: string; line: number };
      init.push({ cmd: t.v, line: t.line });
    }
    const events: Event[] = [];
    const cleanup: { cmd: string; line: number }[] = [];
    while (this.peek().t !== 'eof') {
      if (this.peek().t === 'cmd') {
        // A command with no time: the cleanup command (only at the end).
        const t = this.next() as { v: string; line: number };
        cleanup.push({ cmd: t.v, line: t.line });
        continue;
      }
      if (cleanup.length) this.err('events after the cleanup command');
      events.push(this.event());
    }
    return { options, init, cleanup, events };
  }

  time(): EventTime {
    if (this.isP('*')) {
      this.i++;
      return { type: 'any', t: 0 };
    }
    let type: 'abs' | 'rel' = 'abs';
    if (this.isP('+')) {
      this.i++;
      type = 'rel';
    }
    const t = this.num();
    const et: EventTime = { type, t };
    if (this.isP('~')) {
      this.i++;
      if (this.isP('+')) {
        if (type !== 'rel') this.err('a range mixes absolute and relative times');
        this.i++;
      }
      et.end = this.num();
    }
    if (this.peek().t === 'ell') {
      this.i++;
      et.blockEnd = this.num();
    }
    return et;
  }

  event(): Event {
    const first = this.peek();
    const time = this.time();
    const t = this.peek();
    let action: Action;
    if (t.t === 'cmd') {
      this.i++;
      action = { k: 'cmd', cmd: t.v };
    } else if (t.t === 'code') {
      this.i++;
      action = { k: 'code', code: t.v };
    } else if (t.t === 'p' && (t.v === '<' || t.v === '>')) {
      action = { k: 'packet', p: this.packet() };
    } else if (t.t === 'word' && this.isP('(', 1)) {
      action = { k: 'syscall', s: this.syscall() };
    } else {
      this.err('expected a packet, a system call, a command or a code block');
    }
    if (time.blockEnd !== undefined && action.k !== 'syscall') throw new ParseError(first.line, 'only system calls may block (`...`)');
    const endLine = this.toks[this.i - 1].line;
    const text = this.lines
      .slice(first.line - 1, endLine)
      .map((l) => l.replace(/\/\/.*$/, '').trim())
      .join(' ')
      .trim();
    return { line: first.line, time, action, text };
  }

  packet(): PacketSpec {
    const dir = (this.next() as { v: string }).v as '<' | '>';
    let ecn: string | undefined;
    if (this.isP('[') || this.isP('(')) {
      const close = this.isP('[') ? ']' : ')';
      this.i++;
      const w = this.word().toLowerCase();
      if (w === 'tos' || w === 'ttl' || w === 'flowlabel') this.err(`IP field '${w}' in a packet is not supported`);
      ecn = w;
      while (this.isP(',')) {
        this.i++;
        this.word();
        if (this.peek().t === 'num') this.i++;
      }
      this.expectP(close);
    }
    if (dir === '<' && (this.isWord('icmp') || this.isWord('ICMP'))) {
      // packetdrill's "icmp TYPE [CODE] [mtu N] [[seq:end(len)]]": an error about a segment the stack sent.
      this.i++;
      const line = this.toks[this.i - 1].line;
      const icmp: IcmpSpec = { type: this.word() };
      if (this.peek().t === 'word' && !this.isWord('mtu') && this.peek().line === line) icmp.code = this.word();
      if (this.isWord('mtu')) {
        this.i++;
        icmp.mtu = this.num();
      }
      if (this.isP('[') && this.peek().line === line) {
        this.i++;
        const seq = this.num();
        this.expectP(':');
        const end = this.num();
        this.expectP('(');
        const len = this.num();
        this.expectP(')');
        this.expectP(']');
        if (((end - seq) >>> 0) !== len) this.err(`sequence range ${seq}:${end} does not match length ${len}`);
        icmp.seq = seq;
        icmp.len = len;
      }
      return { dir, ecn, proto: 'icmp', flags: '', seq: 0, end: 0, len: 0, icmp };
    }
    if (this.isWord('udp') || this.isWord('UDP') || this.isWord('icmp') || this.isWord('ICMP')) {
      const w = this.word().toLowerCase() as 'udp' | 'icmp';
      // Skip the rest of the line: the runner reports these unsupported.
      const line = this.toks[this.i - 1].line;
      while (this.peek().t !== 'eof' && this.peek().line === line) this.i++;
      return { dir, ecn, proto: w, flags: '', seq: 0, end: 0, len: 0 };
    }
    if (this.peek().t === 'num' && this.isP('>', 1)) this.err('port numbers in packets are not supported');
    let flags = '';
    if (this.isP('-')) {
      this.i++;
    } else if (this.isP('.')) {
      this.i++;
      flags = '.';
    } else {
      flags = this.word();
      if (this.isP('.')) {
        this.i++;
        flags += '.';
      }
    }
    if (!/^[FSRPUEW.]*$/.test(flags)) this.err(`bad TCP flags '${flags}'`);
    const seq = this.num();
    this.expectP(':');
    const end = this.num();
    this.expectP('(');
    const len = this.num();
    this.expectP(')');
    if (((end - seq) >>> 0) !== len) this.err(`sequence range ${seq}:${end} does not match length ${len}`);
    const p: PacketSpec = { dir, ecn, proto: 'tcp', flags, seq, end, len };
    for (;;) {
      if (this.isWord('ack')) {
        this.i++;
        p.ack = this.num();
      } else if (this.isWord('win')) {
        this.i++;
        p.win = this.num();
      } else if (this.isWord('urg')) {
        this.i++;
        p.urg = this.num();
      } else break;
    }
    if (this.isP('<')) {
      this.i++;
      if (this.peek().t === 'ell') {
        this.i++;
        p.opts = null;
      } else {
        p.opts = [];
        for (;;) {
          p.opts.push(this.tcpOption());
          if (this.isP(',')) {
            this.i++;
            continue;
          }
          break;
        }
      }
      this.expectP('>');
    }
    return p;
  }

  tcpOption(): TcpOpt {
    const w = this.word();
    switch (w) {
      case 'nop':
        return { kind: 'nop' };
      case 'eol':
        return { kind: 'eol' };
      case 'mss':
        return { kind: 'mss', v: this.num() };
      case 'wscale':
        return { kind: 'wscale', v: this.num() };
      case 'sackOK':
        return { kind: 'sackOK' };
      case 'sack': {
        const blocks: [number, number][] = [];
        while (this.peek().t === 'num') {
          const a = this.num();
          this.expectP(':');
          blocks.push([a, this.num()]);
        }
        return { kind: 'sack', blocks };
      }
      case 'TS': {
        if (!this.isWord('val')) this.err("expected 'val'");
        this.i++;
        const val = this.num();
        if (!this.isWord('ecr')) this.err("expected 'ecr'");
        this.i++;
        return { kind: 'TS', val, ecr: this.num() };
      }
      case 'FO':
      case 'FOEXP': {
        // packetdrill's hex_blob: the lexer splits "3021b9d8..." into a number and a word; join them.
        let cookie = '';
        while (this.peek().t === 'num' || this.peek().t === 'word') {
          const t = this.next();
          cookie += t.t === 'num' ? t.text : (t as { v: string }).v;
        }
        return cookie ? { kind: w === 'FO' ? 'fo' : 'foexp', cookie } : { kind: w === 'FO' ? 'fo' : 'foexp' };
      }
      case 'md5':
        this.err(`TCP option '${w}' is not supported`);
    }
    this.err(`unknown TCP option '${w}'`);
  }

  syscall(): SyscallSpec {
    const name = this.word();
    this.expectP('(');
    const args: Expr[] = [];
    if (!this.isP(')')) {
      for (;;) {
        args.push(this.expr());
        if (this.isP(',')) {
          this.i++;
          continue;
        }
        break;
      }
    }
    this.expectP(')');
    this.expectP('=');
    const ret = this.expr();
    const s: SyscallSpec = { name, args, ret };
    if (this.peek().t === 'word') s.errno = this.word();
    if (this.isP('(')) {
      // A note: words up to the closing parenthesis.
      this.i++;
      const words: string[] = [];
      while (!this.isP(')') && this.peek().t !== 'eof') {
        const t = this.next();
        words.push(t.t === 'word' || t.t === 'p' ? t.v : t.t === 'num' ? t.text : '');
      }
      this.expectP(')');
      s.note = words.join(' ');
    }
    return s;
  }

  expr(): Expr {
    const a = this.atom();
    if (!this.isP('|')) return a;
    const items = [a];
    while (this.isP('|')) {
      this.i++;
      items.push(this.atom());
    }
    return { k: 'or', items };
  }

  atom(): Expr {
    const t = this.peek();
    if (t.t === 'ell') {
      this.i++;
      return { k: 'ell' };
    }
    if (t.t === 'num' || (t.t === 'p' && t.v === '-')) return { k: 'int', v: this.num() };
    if (t.t === 'str') {
      this.i++;
      if (this.peek().t === 'ell') this.i++;
      return { k: 'str', v: t.v };
    }
    if (t.t === 'word') {
      this.i++;
      return { k: 'word', v: t.v };
    }
    if (this.isP('[')) {
      this.i++;
      const items: Expr[] = [];
      while (!this.isP(']')) {
        items.push(this.expr());
        if (this.isP(',')) this.i++;
        else if (!this.isP(']')) this.err("expected ',' or ']'");
      }
      this.i++;
      return { k: 'list', items };
    }
    if (this.isP('{')) {
      this.i++;
      const fields: Field[] = [];
      while (!this.isP('}')) {
        fields.push(this.field());
        if (this.isP(',')) this.i++;
        else if (!this.isP('}')) this.err("expected ',' or '}'");
      }
      this.i++;
      return { k: 'struct', fields };
    }
    this.err('expected an expression');
  }

  field(): Field {
    if (this.peek().t === 'word' && this.isP('=', 1)) {
      const name = this.word();
      this.i++;
      return { name, value: this.expr() };
    }
    if (this.peek().t === 'word' && this.isP('(', 1)) {
      // msg_name(...)=..., msg_iov(1)=[...]
      const name = this.word();
      this.i++;
      const arg = this.expr();
      this.expectP(')');
      this.expectP('=');
      return { name, arg, value: this.expr() };
    }
    return { value: this.expr() };
  }
}

function describe(t: Tok): string {
  switch (t.t) {
    case 'eof':
      return 'end of script';
    case 'ell':
      return "'...'";
    case 'num':
      return `'${t.text}'`;
    case 'cmd':
      return 'a command';
    case 'code':
      return 'a code block';
    case 'opt':
      return `'--${t.v}'`;
    default:
      return `'${t.v}'`;
  }
}

export function parseScript(src: string): Script {
  return new Parser(lex(src), src.split('\n')).script();
}

/** A packet as packetdrill prints it: "P. 1:1001(1000) ack 1 win 256 <nop,nop,TS val 1 ecr 2>". */
export function formatPacket(p: PacketSpec): string {
  let s = p.ecn ? `[${p.ecn}] ` : '';
  s += `${p.flags || '-'} ${p.seq}:${p.end}(${p.len})`;
  if (p.ack !== undefined) s += ` ack ${p.ack}`;
  if (p.win !== undefined) s += ` win ${p.win}`;
  if (p.urg !== undefined) s += ` urg ${p.urg}`;
  if (p.opts === null) s += ' <...>';
  else if (p.opts) s += ` <${p.opts.map(formatOpt).join(',')}>`;
  return s;
}

export function formatOpt(o: TcpOpt): string {
  switch (o.kind) {
    case 'mss':
    case 'wscale':
      return `${o.kind} ${o.v}`;
    case 'sack':
      return `sack ${o.blocks!.map(([a, b]) => `${a}:${b}`).join(' ')}`;
    case 'TS':
      return `TS val ${o.val} ecr ${o.ecr}`;
    case 'fo':
    case 'foexp':
      return (o.kind === 'fo' ? 'FO' : 'FOEXP') + (o.cookie ? ` ${o.cookie}` : '');
    default:
      return o.kind;
  }
}
