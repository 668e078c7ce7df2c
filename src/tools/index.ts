/**
 * The tool engine (emulated tool calling over the web chat) and JSON output, face-agnostic: a face
 * translates its request into the OpenAI `ChatRequest` shape, `prepareChat` builds the plans and the
 * prompt (with the tool and output blocks and the folded history), the pipeline stages turn the
 * answer into content and `tool_call` events, the runner retries once on a ModelOutputError, and the
 * face renders the `OutEvent`s.
 */
export { DEFAULT_TOOL_MARKERS, MarkerSet, RESULT_CLOSE, RESULT_OPEN, type ToolMarkers } from './markers.js'
export { forced, toolPlan, type ToolChoice, type ToolDef, type ToolPlan } from './plan.js'
export { foldedCall, foldedResult, toolBlock, toolCorrection } from './prompt.js'
export { newCallId, readCall, type ReadCall } from './calls.js'
export { CallScanner, type Scanned } from './scanner.js'
export { ModelOutputError, type ModelOutputKind } from './errors.js'
export { checkOutput, outputBlock, outputCorrection, outputPlan, type OutputPlan } from './json-output.js'
export { extractJson, parseLenient } from './json-text.js'
export { SchemaCompiler, type Check } from './schema.js'
