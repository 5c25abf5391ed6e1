export { type Cam, type CamImage, type CamMethod, type CamModel, type CamOptions, type Faithfulness, type FaithfulnessCurve, CAM_METHODS, camFaithfulness, gradCam, gradCams, resampleMap } from './cam.js';
export { type ColormapName, type HeatFigure, type SizedFigure, type OverlayOptions, COLORMAP_NAMES, colormapLut, heatFigure, overlayFigure, saveOverlay } from './overlay.js';
export { type SlideHeatMap, type SlideOptions, heatAtPixels, saveHeatMap, slideHeatMap } from './slide.js';
export { type Arithmetic, fmtNum, fmtRange } from './arithmetic.js';
export { type Step, type StepKind, type StepOptions, collectSteps, onnxScope, stepThrough } from './step.js';
export { type ActivationMap, type ActivationMapOptions, activationMaps, saveActivationMaps } from './activations.js';
export { type ExplorerData, type ExplorerFiles, type ExplorerModel, type ExplorerOptions, checkLoopback, explorerData, explorerFiles, serveExplorer, writeExplorer } from './explorer/write.js';
