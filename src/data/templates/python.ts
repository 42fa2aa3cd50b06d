/**
 * Python semantics that chat templates rely on and @huggingface/jinja 0.5.x does not give
 * (0.5.13, the newest release, behaves the same):
 *
 * - String methods take Python's arguments: `content.lstrip("\n")` strips newlines only, where
 *   the package ignores the argument and strips all whitespace; `title()` and `capitalize()`
 *   lowercase the rest of each word; `rsplit`, `find`, `count` and `splitlines` exist; no-argument
 *   `strip()` / `split()` use Python's whitespace (which has U+001C-U+001F and U+0085, not U+FEFF).
 *
 *     {{ "\n  hi  \n".lstrip("\n") }}   ->  "  hi  \n"      (the package: "hi  \n")
 *     {{ "hello wORLD".title() }}       ->  "Hello World"   (the package: "Hello WORLD")
 *
 * - An attribute or item of an undefined value raises, as jinja2's default Undefined does under
 *   transformers: `{{ foo.bar }}` with `foo` undefined is "'foo' is undefined", where the package
 *   renders ''. Printing or testing an undefined value itself (`{{ foo }}`, `foo is defined`)
 *   stays silent, as in jinja2.
 *
 * installPythonSemantics(Interpreter subclass) overrides member access on that subclass only.
 */
import { Environment, Interpreter } from '@huggingface/jinja';

type RuntimeValue = { type: string; value: unknown; toString(): string };
type Ctor<V = unknown> = new (v: V) => RuntimeValue;
interface Node { type: string; [k: string]: unknown }

/** Thrown for an attribute or item of an undefined value; the message is jinja2's. */
export class UndefinedError extends Error {
  override name = 'UndefinedError';
}

// The runtime value classes are not exported by the package: take them from values it makes.
const probe = (() => {
  const env = new Environment();
  const interp = new Interpreter(env) as unknown as { evaluate(n: Node, e: Environment): RuntimeValue };
  const str = interp.evaluate({ type: 'StringLiteral', value: 'a b' }, env) as RuntimeValue & { builtins: Map<string, RuntimeValue> };
  const upper = str.builtins.get('upper') as RuntimeValue & { value: (args: RuntimeValue[]) => RuntimeValue };
  const split = str.builtins.get('split') as { value: (args: RuntimeValue[]) => RuntimeValue };
  const startswith = str.builtins.get('startswith') as { value: (args: RuntimeValue[]) => RuntimeValue };
  return {
    String: str.constructor as Ctor<string>,
    Function: upper.constructor as Ctor<(args: RuntimeValue[]) => RuntimeValue>,
    Array: split.value([]).constructor as Ctor<RuntimeValue[]>,
    Boolean: startswith.value([str]).constructor as Ctor<boolean>,
    Integer: (str.builtins.get('length') as RuntimeValue).constructor as Ctor<number>,
    Undefined: interp.evaluate({ type: 'Identifier', value: 'nothing' }, env).constructor as Ctor<undefined>,
  };
})();

// ---------------------------------------------------------------------------------------------
// Python's str methods on JavaScript strings

/** Characters str.isspace() accepts (str.strip() / str.split() with no argument). */
const PY_SPACE = ' \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000';

function stripSet(s: string, chars: string | null, left: boolean, right: boolean): string {
  const set = chars ?? PY_SPACE;
  const cps = [...s];
  let a = 0;
  let b = cps.length;
  if (left) while (a < b && set.includes(cps[a])) a++;
  if (right) while (b > a && set.includes(cps[b - 1])) b--;
  return cps.slice(a, b).join('');
}

function splitPy(s: string, sep: string | null, maxsplit: number, fromRight: boolean): string[] {
  if (sep === '') throw new Error('empty separator');
  if (sep === null) {
    const words: Array<[number, number]> = [];
    const cps = [...s];
    let i = 0;
    while (i < cps.length) {
      while (i < cps.length && PY_SPACE.includes(cps[i])) i++;
      if (i >= cps.length) break;
      const start = i;
      while (i < cps.length && !PY_SPACE.includes(cps[i])) i++;
      words.push([start, i]);
    }
    const text = (a: number, b: number) => cps.slice(a, b).join('');
    if (maxsplit < 0 || words.length <= maxsplit + 1) return words.map(([a, b]) => text(a, b));
    if (!fromRight) {
      const head = words.slice(0, maxsplit).map(([a, b]) => text(a, b));
      return [...head, text(words[maxsplit][0], cps.length)]; // the rest keeps its trailing whitespace
    }
    const tail = words.slice(words.length - maxsplit).map(([a, b]) => text(a, b));
    return [text(0, words[words.length - maxsplit - 1][1]), ...tail];
  }
  const parts = s.split(sep);
  if (maxsplit < 0 || parts.length <= maxsplit + 1) return parts;
  return fromRight
    ? [parts.slice(0, parts.length - maxsplit).join(sep), ...parts.slice(parts.length - maxsplit)]
    : [...parts.slice(0, maxsplit), parts.slice(maxsplit).join(sep)];
}

const isCased = (ch: string) => ch.toLowerCase() !== ch.toUpperCase();

function titlePy(s: string): string {
  let out = '';
  let prevCased = false;
  for (const ch of s) {
    const cased = isCased(ch);
    out += cased ? (prevCased ? ch.toLowerCase() : ch.toUpperCase()) : ch;
    prevCased = cased;
  }
  return out;
}

function countPy(s: string, sub: string): number {
  if (sub === '') return [...s].length + 1;
  return s.split(sub).length - 1;
}

function replacePy(s: string, old: string, repl: string, count: number): string {
  const limit = count < 0 ? Infinity : count;
  if (old === '') {
    // Python inserts `repl` before every character and at the end, up to `count` times.
    const cps = [...s];
    let out = '';
    for (let i = 0; i <= cps.length; i++) out += (i < limit ? repl : '') + (cps[i] ?? '');
    return out;
  }
  const parts = s.split(old);
  if (parts.length - 1 <= limit) return parts.join(repl);
  return parts.slice(0, limit + 1).join(repl) + old + parts.slice(limit + 1).join(old);
}

/** Positional and keyword arguments of a call, by Python parameter name. */
function argsOf(method: string, args: RuntimeValue[], names: string[]): Array<RuntimeValue | undefined> {
  let positional = args;
  let keywords = new Map<string, RuntimeValue>();
  const last = args[args.length - 1];
  if (last?.type === 'KeywordArgumentsValue') {
    positional = args.slice(0, -1);
    keywords = last.value as Map<string, RuntimeValue>;
  }
  if (positional.length > names.length) throw new Error(`${method}() takes at most ${names.length} arguments (${positional.length} given)`);
  for (const k of keywords.keys()) if (!names.includes(k)) throw new Error(`${method}() got an unexpected keyword argument '${k}'`);
  return names.map((n, i) => positional[i] ?? keywords.get(n));
}

function optString(method: string, v: RuntimeValue | undefined): string | null {
  if (v === undefined || v.type === 'NullValue' || v.type === 'UndefinedValue') return null;
  if (v.type !== 'StringValue') throw new Error(`${method}() argument must be str or None, not ${v.type}`);
  return v.value as string;
}

function optInt(method: string, v: RuntimeValue | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (v.type !== 'IntegerValue') throw new Error(`${method}() argument must be an integer, not ${v.type}`);
  return v.value as number;
}

function affixes(method: string, v: RuntimeValue | undefined): string[] {
  if (v?.type === 'StringValue') return [v.value as string];
  if (v?.type === 'ArrayValue' || v?.type === 'TupleValue') {
    return (v.value as RuntimeValue[]).map((x) => {
      if (x.type !== 'StringValue') throw new Error(`tuple for ${method} must only contain str, not ${x.type}`);
      return x.value as string;
    });
  }
  throw new Error(`${method} first arg must be str or a tuple of str, not ${v?.type ?? 'nothing'}`);
}

const str = (s: string) => new probe.String(s);
const list = (xs: string[]) => new probe.Array(xs.map(str));

/** Python's str methods: (the string, the call's arguments) -> the result. */
const STRING_METHODS: Record<string, (s: string, args: RuntimeValue[]) => RuntimeValue> = {
  strip: (s, a) => str(stripSet(s, optString('strip', argsOf('strip', a, ['chars'])[0]), true, true)),
  lstrip: (s, a) => str(stripSet(s, optString('lstrip', argsOf('lstrip', a, ['chars'])[0]), true, false)),
  rstrip: (s, a) => str(stripSet(s, optString('rstrip', argsOf('rstrip', a, ['chars'])[0]), false, true)),
  split: (s, a) => {
    const [sep, max] = argsOf('split', a, ['sep', 'maxsplit']);
    return list(splitPy(s, optString('split', sep), optInt('split', max, -1), false));
  },
  rsplit: (s, a) => {
    const [sep, max] = argsOf('rsplit', a, ['sep', 'maxsplit']);
    return list(splitPy(s, optString('rsplit', sep), optInt('rsplit', max, -1), true));
  },
  splitlines: (s, a) => {
    const [keep] = argsOf('splitlines', a, ['keepends']);
    const parts = s.match(/[^\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]*(\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]|$)/g) ?? [];
    const lines = parts.filter((p, i) => p !== '' || i < parts.length - 1).filter((p) => p !== '');
    return list(keep?.value ? lines : lines.map((l) => l.replace(/(\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029])$/, '')));
  },
  startswith: (s, a) => {
    const [prefix, start, end] = argsOf('startswith', a, ['prefix', 'start', 'end']);
    const sub = s.slice(optInt('startswith', start, 0), end ? optInt('startswith', end, s.length) : undefined);
    return new probe.Boolean(affixes('startswith', prefix).some((p) => sub.startsWith(p)));
  },
  endswith: (s, a) => {
    const [suffix, start, end] = argsOf('endswith', a, ['suffix', 'start', 'end']);
    const sub = s.slice(optInt('endswith', start, 0), end ? optInt('endswith', end, s.length) : undefined);
    return new probe.Boolean(affixes('endswith', suffix).some((p) => sub.endsWith(p)));
  },
  replace: (s, a) => {
    const [old, repl, count] = argsOf('replace', a, ['old', 'new', 'count']);
    if (old?.type !== 'StringValue' || repl?.type !== 'StringValue') throw new Error('replace() arguments must be str');
    return str(replacePy(s, old.value as string, repl.value as string, optInt('replace', count, -1)));
  },
  find: (s, a) => {
    const [sub] = argsOf('find', a, ['sub']);
    return new probe.Integer(s.indexOf(optString('find', sub) ?? ''));
  },
  count: (s, a) => {
    const [sub] = argsOf('count', a, ['sub']);
    return new probe.Integer(countPy(s, optString('count', sub) ?? ''));
  },
  title: (s, a) => (argsOf('title', a, []), str(titlePy(s))),
  capitalize: (s, a) => {
    argsOf('capitalize', a, []);
    const [first = '', ...rest] = [...s];
    return str(first.toUpperCase() + rest.join('').toLowerCase());
  },
  upper: (s, a) => (argsOf('upper', a, []), str(s.toUpperCase())),
  lower: (s, a) => (argsOf('lower', a, []), str(s.toLowerCase())),
};

// ---------------------------------------------------------------------------------------------
// Member access

/** A node standing for a value already evaluated (so the object is never evaluated twice). */
const EVALUATED = 'WebTuneEvaluated';
type UndefinedWithCause = RuntimeValue & { cause?: string };

function pyTypeName(v: RuntimeValue): string {
  switch (v.type) {
    case 'ObjectValue': case 'KeywordArgumentsValue': return 'dict';
    case 'ArrayValue': case 'TupleValue': return 'list';
    case 'StringValue': return 'str';
    case 'IntegerValue': return 'int';
    case 'FloatValue': return 'float';
    case 'BooleanValue': return 'bool';
    case 'NullValue': return 'None';
    default: return v.type;
  }
}

export function installPythonSemantics(cls: typeof Interpreter): void {
  const base = Interpreter.prototype as unknown as {
    evaluate(this: unknown, n: Node, e: Environment): RuntimeValue;
    evaluateMemberExpression(this: unknown, n: Node, e: Environment): RuntimeValue;
  };
  const proto = cls.prototype as unknown as typeof base;
  proto.evaluate = function (node, env) {
    if (node?.type === EVALUATED) return node.value as RuntimeValue;
    return base.evaluate.call(this, node, env);
  };
  proto.evaluateMemberExpression = function (expr, env) {
    const objectNode = expr.object as Node;
    const object = this === undefined ? undefined : (this as typeof base).evaluate(objectNode, env);
    if (!object) throw new Error('member access outside an interpreter');
    if (object.type === 'UndefinedValue') {
      const cause = (object as UndefinedWithCause).cause ?? (objectNode.type === 'Identifier' ? `'${String(objectNode.value)}' is undefined` : 'undefined value');
      throw new UndefinedError(cause);
    }
    const property = expr.property as Node;
    if (object.type === 'StringValue' && !expr.computed && property.type === 'Identifier') {
      const method = STRING_METHODS[property.value as string];
      if (method) return new probe.Function((args: RuntimeValue[]) => method(object.value as string, args));
    }
    const value = base.evaluateMemberExpression.call(this, { ...expr, object: { type: EVALUATED, value: object } }, env);
    if (value.type === 'UndefinedValue') {
      // Why it is undefined, in jinja2's words, for when it is used further.
      const key = expr.computed ? undefined : property.type === 'Identifier' ? String(property.value) : undefined;
      const u = new probe.Undefined(undefined) as UndefinedWithCause;
      if (object.type === 'ArrayValue' && property.type !== 'Identifier') u.cause = `list object has no element ${String((property as { value?: unknown }).value ?? '')}`;
      else u.cause = `'${pyTypeName(object)} object' has no attribute '${key ?? String((property as { value?: unknown }).value ?? '')}'`;
      return u;
    }
    return value;
  };
}
