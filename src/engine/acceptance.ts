// Acceptance rules for one verified chain of drafts. Pure functions, O(k).
// `alt` comes from the target (see VerifySpec): alt[i] is what to emit if draft[i] is the first
// rejection (argmax, or a sample of the residual normalize(max(0, p_i - q_i))), alt[k] the bonus.

export interface AcceptanceResult {
  /** number of draft tokens accepted (0..k) */
  accepted: number;
  /** draft[0..accepted) followed by alt[accepted]: always accepted + 1 tokens */
  emitted: number[];
}

function emit(draft: ArrayLike<number>, alt: ArrayLike<number>, accepted: number): AcceptanceResult {
  const emitted = new Array<number>(accepted + 1);
  for (let i = 0; i < accepted; i++) emitted[i] = draft[i]!;
  emitted[accepted] = alt[accepted]!;
  return { accepted, emitted };
}

/** Greedy: exact match against the target's argmax. */
export function acceptGreedy(draft: ArrayLike<number>, alt: ArrayLike<number>): AcceptanceResult {
  let i = 0;
  while (i < draft.length && draft[i] === alt[i]) i++;
  return emit(draft, alt, i);
}

/**
 * Stochastic (Leviathan et al.): accept draft[i] with probability min(1, p[i] / q[i]).
 * `u * q < p` is that test for u uniform in [0,1) without dividing (q = 0 accepts iff p > 0).
 */
export function acceptStochastic(
  draft: ArrayLike<number>,
  q: ArrayLike<number>,
  p: ArrayLike<number>,
  alt: ArrayLike<number>,
  uniforms: ArrayLike<number>,
): AcceptanceResult {
  let i = 0;
  while (i < draft.length && uniforms[i]! * q[i]! < p[i]!) i++;
  return emit(draft, alt, i);
}

/** Dispatch on the target's temperature: 0 is greedy. */
export function acceptDrafts(
  greedy: boolean,
  draft: ArrayLike<number>,
  q: ArrayLike<number>,
  p: ArrayLike<number>,
  alt: ArrayLike<number>,
  uniforms: ArrayLike<number>,
): AcceptanceResult {
  return greedy ? acceptGreedy(draft, alt) : acceptStochastic(draft, q, p, alt, uniforms);
}
