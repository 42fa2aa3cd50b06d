/**
 * Axis tick labels with just enough digits to tell neighbouring ticks apart. uPlot's default
 * rounds a learning-rate axis of 0.001, 0.0015, 0.002 to "0.001, 0.001, 0.002"; here every
 * label gets the fewest significant digits (1 to 6) at which every label reads back as its
 * value (within 1 % of the spacing between ticks, so 1.5 never shows as 2), and values
 * under 1e-3 are written in exponent form (1.5e-4), as learning rates usually are.
 *
 *   tickLabels([0.001, 0.0015, 0.002])  -> ['0.001', '0.0015', '0.002']
 *   tickLabels([0.0001, 0.00015])       -> ['1e-4', '1.5e-4']
 */
export function tickLabels(splits: readonly number[]): string[] {
  const one = (v: number, digits: number): string => {
    if (v === 0) return '0';
    const a = Math.abs(v);
    if (a < 1e-3 || a >= 1e6) {
      const [m, e] = v.toExponential(digits - 1).split('e');
      return `${m.includes('.') ? m.replace(/\.?0+$/, '') : m}e${Number(e)}`;
    }
    return String(Number(v.toPrecision(digits)));
  };
  const gaps = splits.slice(1).map((v, i) => Math.abs(v - splits[i])).filter((g) => g > 0);
  const tolerance = 0.01 * (gaps.length ? Math.min(...gaps) : Math.abs(splits[0] ?? 0));
  for (let digits = 1; digits <= 6; digits++) {
    const labels = splits.map((v) => one(v, digits));
    if (labels.every((l, i) => Math.abs(Number(l) - splits[i]) <= tolerance)) return labels;
  }
  return splits.map((v) => one(v, 6));
}
