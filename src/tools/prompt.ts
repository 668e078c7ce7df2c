/**
 * What the model is told: the tool block (a system block in the folded message), the folded form of
 * calls and results in the history, and the note a corrective retry appends.
 */
import type { ToolPlan } from './plan.js'
import { RESULT_CLOSE, RESULT_OPEN, type MarkerSet } from './markers.js'

function requirement (plan: ToolPlan): string {
  if (plan.choice === 'required') return 'You MUST call at least one of the tools in this answer.'
  if (plan.choice !== 'auto') return `You MUST call the tool \`${plan.choice.name}\` in this answer.`
  return 'Call a tool only when it is needed; otherwise answer normally, without these markers.'
}

/** The system block that declares the tools and the call format. */
export function toolBlock (plan: ToolPlan): string {
  const { open, close } = plan.markers.markers
  const lines = [
    '# Tools',
    '',
    'You can call the tools listed below. To call a tool, write exactly this, on lines of their own:',
    open,
    '{"name": "<tool name>", "arguments": {<the arguments as a JSON object>}}',
    close,
    '',
    'Rules:',
    `- ${requirement(plan)}`,
    '- One JSON object per block: "name" is one of the tool names below; "arguments" is a JSON object that matches the tool\'s parameters (every required parameter present, the right types).',
    plan.parallel
      ? `- To call several tools at once, write one ${open} block per call, one after another.`
      : '- Call at most one tool per answer.',
    `- Do not put the call in a code block. Write nothing after the last ${close}: the results come back in the next message as ${RESULT_OPEN} <name> <call id>] … ${RESULT_CLOSE}.`,
    '',
    '## Available tools',
  ]
  for (const t of plan.tools) {
    lines.push('', `### ${t.name}`)
    if (t.description) lines.push(t.description)
    lines.push(`Parameters (JSON Schema): ${JSON.stringify(t.parameters)}`)
  }
  return lines.join('\n')
}

/** An assistant tool call in the history, in the same marker format the model is asked to write. */
export function foldedCall (markers: MarkerSet, name: string, args: unknown): string {
  return `${markers.markers.open}\n${JSON.stringify({ name, arguments: args })}\n${markers.markers.close}`
}

/** A tool result in the history; marker text inside it is neutralised. */
export function foldedResult (markers: MarkerSet, name: string, id: string, content: string): string {
  return `${RESULT_OPEN} ${name}${id ? ` ${id}` : ''}]\n${markers.neutralise(content)}\n${RESULT_CLOSE}`
}

/** The note a corrective retry appends to the prompt when a forced call was missing or invalid. */
export function toolCorrection (plan: ToolPlan, problems: string[]): string {
  const { open, close } = plan.markers.markers
  return [
    '[Gateway note] Your previous answer to this conversation was rejected because it did not contain a valid tool call:',
    ...problems.map((p) => `- ${p}`),
    `Answer again. ${requirement(plan)} Use exactly this format, with arguments that match the tool's parameters:`,
    open,
    '{"name": "<tool name>", "arguments": {…}}',
    close,
  ].join('\n')
}
