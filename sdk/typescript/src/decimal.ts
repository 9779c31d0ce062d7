// Exact comparison and addition of the API's decimal strings (no floats).

const DECIMAL = /^([+-]?)(\d*)(?:\.(\d*))?$/;

interface Parts {
  negative: boolean;
  digits: bigint; // the value × 10^scale
  scale: number;
}

function parse(value: string): Parts {
  const match = DECIMAL.exec(value.trim());
  if (match === null || (match[2] === "" && (match[3] ?? "") === "")) {
    throw new TypeError(`Not a decimal string: ${JSON.stringify(value)}`);
  }
  const fraction = match[3] ?? "";
  const digits = BigInt((match[2] || "0") + fraction);
  return { negative: match[1] === "-" && digits !== 0n, digits, scale: fraction.length };
}

function scaled(parts: Parts, scale: number): bigint {
  const value = parts.digits * 10n ** BigInt(scale - parts.scale);
  return parts.negative ? -value : value;
}

/** -1, 0 or 1 as `a` is below, equal to or above `b` ("1.50" equals "1.5"). */
export function compareDecimal(a: string, b: string): number {
  const x = parse(a);
  const y = parse(b);
  const scale = Math.max(x.scale, y.scale);
  const left = scaled(x, scale);
  const right = scaled(y, scale);
  return left < right ? -1 : left > right ? 1 : 0;
}

/** `a + b`, exactly, as a decimal string with the larger of the two scales. */
export function addDecimal(a: string, b: string): string {
  const x = parse(a);
  const y = parse(b);
  const scale = Math.max(x.scale, y.scale);
  const sum = scaled(x, scale) + scaled(y, scale);
  const negative = sum < 0n;
  const digits = (negative ? -sum : sum).toString().padStart(scale + 1, "0");
  const whole = digits.slice(0, digits.length - scale);
  const fraction = scale > 0 ? "." + digits.slice(digits.length - scale) : "";
  return (negative ? "-" : "") + whole + fraction;
}

/** Whether a decimal string is zero ("0", "0.000"). */
export function isZeroDecimal(value: string): boolean {
  return parse(value).digits === 0n;
}
