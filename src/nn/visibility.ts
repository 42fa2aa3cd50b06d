/**
 * The attention visibility rule, the one definition every mask and attention kernel follows
 * (stock ops, WGSL kernels, float64 references): causal, within a packed segment, and padding.
 *
 *   query at absolute position i (segment si) sees key j (segment sj) iff
 *     si == 0 (padding):  j == i              a padding query sees only itself, so no row is empty
 *     otherwise:          j <= i && sj == si  causal, inside its own segment
 *   without segments:     j <= i              causal only
 *
 * Segment 0 is padding; a Hugging Face 0/1 attention mask is the one-segment case.
 */

/** Does the query at absolute position i with segment si see key j with segment sj? si/sj null: causal only. */
export function attends(i: number, j: number, si: number | null = null, sj: number | null = null): boolean {
  if (si === null) return j <= i;
  if (si === 0) return j === i;
  return j <= i && sj === si;
}

/**
 * The same rule as a WGSL function `fn <name>(si: i32, sj: i32, i: u32, j: u32) -> bool` for the
 * kernels; with `segments` false it is causal only (si, sj unread).
 */
export function attendsWGSL(name: string, segments: boolean): string {
  const body = segments ? `if (si == 0) { return j == i; }
  return j <= i && sj == si;` : 'return j <= i;';
  return `fn ${name}(si: i32, sj: i32, i: u32, j: u32) -> bool {
  ${body}
}`;
}
