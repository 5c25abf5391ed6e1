/** The workflow from a folder of images to a report: what the train, eval, predict and compare commands run. */
export { trainRun, listData, modelMetadata, type RunMetrics, type TrainRunOptions, type TrainRunResult } from './train_run.js';
export { evalRun, loadTrainedModel, modelProbabilities, predictFiles, type EvalRunOptions, type TrainedModel } from './eval_run.js';
export { compareRuns, formatComparison, type Comparison, type MetricComparison } from './compare.js';
export { writeRunOutputs, type PredictionRow } from './outputs.js';
