/** Float64 CPU references of the activations and their derivatives. */
const C = Math.sqrt(2 / Math.PI);

export function geluTanhRef(z: number): number {
  return 0.5 * z * (1 + Math.tanh(C * (z + 0.044715 * z ** 3)));
}

export function geluTanhGradRef(z: number): number {
  const t = Math.tanh(C * (z + 0.044715 * z ** 3));
  return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * C * (1 + 3 * 0.044715 * z * z);
}

export function swigluRef(g: number, u: number): { y: number; dgate: number; dup: number } {
  const s = 1 / (1 + Math.exp(-g));
  return { y: g * s * u, dgate: u * s * (1 + g * (1 - s)), dup: g * s };
}

/** erf by its Maclaurin series (exact to ~1e-12 for |x| < 4). */
export function erfRef(x: number): number {
  if (Math.abs(x) >= 4) return Math.sign(x);
  let term = x, sum = x;
  for (let n = 1; n < 80; n++) {
    term *= (-x * x) / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

/** The exact GELU, x Φ(x) (activation_function 'gelu'). */
export function geluErfRef(z: number): number {
  return 0.5 * z * (1 + erfRef(z / Math.SQRT2));
}
