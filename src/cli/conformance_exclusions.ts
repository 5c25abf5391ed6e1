/**
 * Cases the conformance command does not compare exactly, each with its reason. Matching is
 * by case folder name. `random-dropout` cases are still run: only shapes and the dropout rule
 * (each output is 0 or x / (1 − ratio), and the mask marks the kept ones) are checked.
 */
export const EXCLUSIONS: Readonly<Record<string, { readonly check: 'skip' | 'random-dropout'; readonly reason: string }>> = {
  test_identity_sequence: { check: 'skip', reason: 'sequence inputs; the engine runs tensors only' },
  test_identity_opt: { check: 'skip', reason: 'optional inputs; the engine runs tensors only' },
  test_training_dropout: { check: 'random-dropout', reason: "the reference mask comes from numpy's RNG" },
  test_training_dropout_default: { check: 'random-dropout', reason: "the reference mask comes from numpy's RNG" },
  test_training_dropout_mask: { check: 'random-dropout', reason: "the reference mask comes from numpy's RNG" },
  test_training_dropout_default_mask: { check: 'random-dropout', reason: "the reference mask comes from numpy's RNG" },
};
