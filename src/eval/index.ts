/** Evaluation: metrics, curves, stratified (grouped) splits, statistical tests, bootstrap CIs, latency. */
export {
  HEADLINE,
  LOG_LOSS_EPS,
  accuracy,
  argmax,
  balancedAccuracy,
  binaryAveragePrecision,
  binaryRocAuc,
  calibrationCurve,
  classificationMetrics,
  cohenKappa,
  confusionMatrix,
  expectedCalibrationError,
  logLoss,
  matthewsCorrcoef,
  prAuc,
  precisionRecallCurve,
  precisionRecallF1,
  probabilityMatrix,
  rocAuc,
  rocCurve,
  specificity,
  type Average,
  type ClassificationMetrics,
  type HeadlineMetric,
  type PerClassMetrics,
  type Probabilities,
} from './metrics.js';
export { stratifiedKFold, stratifiedSplit, type Fold, type Groups, type SplitOptions } from './splits.js';
export { bootstrapCI, mcnemar, meanStd, pairedTTest, quantile, wilcoxonSignedRank, type BootstrapOptions, type MetricFn, type TestResult } from './stats.js';
export { measureLatency, type Latency } from './latency.js';
