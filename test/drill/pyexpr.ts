/**
 * The Python that packetdrill's `%{ }%` blocks hold, as far as the scripts
 * use it: statements `NAME = EXPR` and `assert EXPR[, MSG]`, separated by
 * newlines or `;`, over integers, names (tcpi_* fields, earlier
 * assignments, a few constants), arithmetic, chained comparisons and
 * and/or/not. Anything else is a clear error.
 */

export class PyError extends Error {}

/** An assert that did not hold; `message` is the script's MSG value when given. */
export class AssertionFailed extends Error {
  constructor(
    readonly expr: string,
    readonly detail: string,
  ) {
    super(`assertion failed: ${expr}${detail ? ` (${detail})` : ''}`);
  }
}

type Tk = { t: 'n'; v: number } | { t: 'id'; v: string } | { t: 'op'; v: string } | { t: 's'; v: string };

function tokenize(s: string): Tk[] {
  const out: Tk[] = [];
  const re = /\s*(0x[0-9a-fA-F]+|\d+(?:\.\d+)?|[A-Za-z_][A-Za-z0-9_]*|"[^"]*"|'[^']*'|==|!=|<=|>=|\/\/|\*\*|<<|>>|[-+*\/%<>(),=&|^~])/y;
  let i = 0;
  while (i < s.length) {
    if (/^\s*$/.test(s.slice(i))) break;
    re.lastIndex = i;
    const m = re.exec(s);
    if (!m) throw new PyError(`cannot read Python at '${s.slice(i).trim().slice(0, 20)}'`);
    const w = m[1];
    if (/^[0-9]/.test(w)) out.push({ t: 'n', v: w.startsWith('0x') ? parseInt(w, 16) : Number(w) });
    else if (/^[A-Za-z_]/.test(w)) out.push({ t: 'id', v: w });
    else if (/^["']/.test(w)) out.push({ t: 's', v: w.slice(1, -1) });
    else out.push({ t: 'op', v: w });
    i = re.lastIndex;
  }
  return out;
}

const CMP = new Set(['==', '!=', '<', '>', '<=', '>=']);

class P {
  i = 0;
  constructor(
    readonly tk: Tk[],
    readonly env: (name: string) => number,
  ) {}
  peek(): Tk | undefined {
    return this.tk[this.i];
  }
  isOp(v: string): boolean {
    const t = this.peek();
    return !!t && (t.t === 'op' || t.t === 'id') && t.v === v;
  }
  expr(): number | string {
    return this.or();
  }
  or(): number | string {
    let a = this.and();
    while (this.isOp('or')) {
      this.i++;
      const b = this.and();
      a = a || b;
    }
    return a;
  }
  and(): number | string {
    let a = this.not();
    while (this.isOp('and')) {
      this.i++;
      const b = this.not();
      a = a && b;
    }
    return a;
  }
  not(): number | string {
    if (this.isOp('not')) {
      this.i++;
      return this.not() ? 0 : 1;
    }
    return this.cmp();
  }
  cmp(): number | string {
    let a = this.bitor();
    let result: number | string = a;
    let chained = false;
    let ok = true;
    while (this.peek()?.t === 'op' && CMP.has((this.peek() as { v: string }).v)) {
      const op = (this.tk[this.i++] as { v: string }).v;
      const b = this.bitor();
      chained = true;
      const r = op === '==' ? a === b : op === '!=' ? a !== b : op === '<' ? a < b : op === '>' ? a > b : op === '<=' ? a <= b : a >= b;
      ok = ok && r;
      a = b;
    }
    if (chained) result = ok ? 1 : 0;
    return result;
  }
  /** Python's bitwise operators, on integers of any width (BigInt: tcpi_* counters pass 2^32). */
  bitor(): number | string {
    let a = this.bitxor();
    while (this.isOp('|')) {
      this.i++;
      a = Number(BigInt(a as number) | BigInt(this.bitxor() as number));
    }
    return a;
  }
  bitxor(): number | string {
    let a = this.bitand();
    while (this.isOp('^')) {
      this.i++;
      a = Number(BigInt(a as number) ^ BigInt(this.bitand() as number));
    }
    return a;
  }
  bitand(): number | string {
    let a = this.shift();
    while (this.isOp('&')) {
      this.i++;
      a = Number(BigInt(a as number) & BigInt(this.shift() as number));
    }
    return a;
  }
  shift(): number | string {
    let a = this.sum();
    while (this.isOp('<<') || this.isOp('>>')) {
      const op = (this.tk[this.i++] as { v: string }).v;
      const b = BigInt(this.sum() as number);
      a = Number(op === '<<' ? BigInt(a as number) << b : BigInt(a as number) >> b);
    }
    return a;
  }
  sum(): number | string {
    let a = this.term();
    while (this.isOp('+') || this.isOp('-')) {
      const op = (this.tk[this.i++] as { v: string }).v;
      const b = this.term();
      a = op === '+' ? (a as number) + (b as number) : (a as number) - (b as number);
    }
    return a;
  }
  term(): number | string {
    let a = this.unary();
    while (this.isOp('*') || this.isOp('/') || this.isOp('//') || this.isOp('%')) {
      const op = (this.tk[this.i++] as { v: string }).v;
      const b = this.unary() as number;
      const x = a as number;
      a = op === '*' ? x * b : op === '/' ? x / b : op === '//' ? Math.floor(x / b) : x - Math.floor(x / b) * b;
    }
    return a;
  }
  unary(): number | string {
    if (this.isOp('-')) {
      this.i++;
      return -(this.unary() as number);
    }
    if (this.isOp('+')) {
      this.i++;
      return this.unary();
    }
    if (this.isOp('~')) {
      this.i++;
      return Number(~BigInt(this.unary() as number));
    }
    return this.atom();
  }
  atom(): number | string {
    const t = this.tk[this.i++];
    if (!t) throw new PyError('Python expression ends early');
    if (t.t === 'n') return t.v;
    if (t.t === 's') return t.v;
    if (t.t === 'id') {
      if (t.v === 'True') return 1;
      if (t.v === 'False') return 0;
      return this.env(t.v);
    }
    if (t.v === '(') {
      const v = this.expr();
      if (!this.isOp(')')) throw new PyError("expected ')'");
      this.i++;
      return v;
    }
    throw new PyError(`unexpected '${t.v}' in Python`);
  }
}

/** Split the block into statements: newlines and `;`, comments dropped; a backslash at the end of a line joins the next (Python's explicit line joining). */
function statements(code: string): string[] {
  const out: string[] = [];
  for (const line of code.replace(/\\\r?\n/g, ' ').split('\n')) {
    const l = line.replace(/#.*$/, '');
    for (const s of l.split(';')) if (s.trim()) out.push(s.trim());
  }
  return out;
}

/**
 * Run a block. `vars` holds assignments across blocks; `lookup` resolves
 * other names (tcpi_* fields, constants) or throws PyError.
 */
export function runPython(code: string, vars: Map<string, number>, lookup: (name: string) => number): void {
  const env = (n: string): number => {
    const v = vars.get(n);
    return v !== undefined ? v : lookup(n);
  };
  for (const st of statements(code)) {
    const tk = tokenize(st);
    if (tk[0]?.t === 'id' && tk[0].v === 'assert') {
      const p = new P(tk.slice(1), env);
      const v = p.expr();
      let detail = '';
      if (p.isOp(',')) {
        // Python evaluates the message only when the assertion fails; one the evaluator cannot read ('...' % (...)) is shown as written.
        if (v) continue;
        p.i++;
        try {
          detail = String(p.expr());
          if (p.i !== p.tk.length) throw new PyError('trailing');
        } catch (e) {
          if (!(e instanceof PyError)) throw e;
          detail = st.slice(st.indexOf(',') + 1).trim();
        }
        throw new AssertionFailed(st.slice(6).split(',')[0].trim(), detail);
      }
      if (p.i !== p.tk.length) throw new PyError(`cannot read '${st}'`);
      if (!v) throw new AssertionFailed(st.slice(6).split(',')[0].trim(), detail);
      continue;
    }
    if (tk[0]?.t === 'id' && tk[1]?.t === 'op' && tk[1].v === '=') {
      const p = new P(tk.slice(2), env);
      const v = p.expr();
      if (p.i !== p.tk.length || typeof v !== 'number') throw new PyError(`cannot read '${st}'`);
      vars.set(tk[0].v, v);
      continue;
    }
    throw new PyError(`unsupported Python statement '${st}'`);
  }
}
