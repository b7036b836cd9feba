/**
 * Held against used (issue 28), as the card and the run view show it: the
 * efficiency figures the server records beside the held hours (a cluster's
 * `cost`, a step's `cost` in run.json), the cluster's warnings (held GPUs idle
 * past the waste window, environment drift) and a run's right-sizing
 * suggestions. Pure: jest checks it as is.
 */

import { TranslationBundle, UNTRANSLATED } from './i18n';
import { formatBytes, hours } from './model';

/** The measured figures of a cost record (metrics/efficiency.py's names); held hours beside them. */
export interface IEfficiency {
  core_hours?: number | null;
  gpu_hours?: number | null;
  cpu_efficiency?: number | null;
  gpu_efficiency?: number | null;
  gpu_used_hours?: number | null;
  peak_memory?: number | null;
  memory_limit?: number | null;
}

/** One right-sizing suggestion of a run (run.json's `suggestions`, metrics/rightsize.py). */
export interface ISuggestion {
  step: string;
  text: string;
  suggest?: { memory?: string; resources?: Record<string, number> };
}

/** A share 0..1 as a whole percent: `42%`. */
export function percent(share: number): string {
  return `${Math.round(share * 100)}%`;
}

/** Whether a cost record carries measured figures at all (older records and cached steps do not). */
export function measured(cost: unknown): cost is IEfficiency {
  return !!cost && typeof cost === 'object' && 'cpu_efficiency' in (cost as object);
}

/** Peak memory against its limit: `3.1 GiB of 16 GiB`, `3.1 GiB` (no limit), '' (none measured). */
export function peakMemory(cost: unknown, trans: TranslationBundle = UNTRANSLATED): string {
  if (!measured(cost) || !cost.peak_memory) {
    return '';
  }
  return cost.memory_limit
    ? trans.__('%1 of %2', formatBytes(cost.peak_memory), formatBytes(cost.memory_limit))
    : formatBytes(cost.peak_memory);
}

/** How the held amount beside a share is written: `1.2 core-h` unless the caller says otherwise. */
export type HeldAmount = (hours: number, what: 'core' | 'GPU') => string;

/**
 * A cluster's (or a run's) efficiency, one labelled figure each:
 * `CPU 42% of 1.20 core-h`, `GPU 7% of 2.00 GPU-h` (or `GPU not measured, 2.00 GPU-h held`),
 * `peak memory 3.1 GiB of 16.0 GiB`. Null when nothing was measured. `held` writes the held
 * amounts (the run view writes short runs in core-s); by default in hours, as the card's usage.
 */
export function efficiencyParts(
  cost: unknown,
  trans: TranslationBundle = UNTRANSLATED,
  held?: HeldAmount
): string[] | null {
  if (!measured(cost)) {
    return null;
  }
  const amount: HeldAmount =
    held ?? ((h, what) => (what === 'core' ? trans.__('%1 core-h', hours(h)) : trans.__('%1 GPU-h', hours(h))));
  const parts: string[] = [];
  if (cost.cpu_efficiency !== null && cost.cpu_efficiency !== undefined) {
    parts.push(trans.__('CPU %1 of %2', percent(cost.cpu_efficiency), amount(cost.core_hours ?? 0, 'core')));
  }
  if (cost.gpu_hours) {
    parts.push(
      cost.gpu_efficiency !== null && cost.gpu_efficiency !== undefined
        ? trans.__('GPU %1 of %2', percent(cost.gpu_efficiency), amount(cost.gpu_hours, 'GPU'))
        : trans.__('GPU not measured, %1 held', amount(cost.gpu_hours, 'GPU'))
    );
  }
  if (cost.peak_memory) {
    parts.push(
      cost.memory_limit
        ? trans.__('peak memory %1 of %2', formatBytes(cost.peak_memory), formatBytes(cost.memory_limit))
        : trans.__('peak memory %1', formatBytes(cost.peak_memory))
    );
  }
  return parts.length ? parts : null;
}

/** A step's efficiency cell in the run view: `CPU 42% · GPU 7%` ('' when not measured). */
export function stepEfficiency(cost: unknown, trans: TranslationBundle = UNTRANSLATED): string {
  if (!measured(cost)) {
    return '';
  }
  const parts: string[] = [];
  if (cost.cpu_efficiency !== null && cost.cpu_efficiency !== undefined) {
    parts.push(trans.__('CPU %1', percent(cost.cpu_efficiency)));
  }
  if (cost.gpu_hours) {
    parts.push(
      cost.gpu_efficiency !== null && cost.gpu_efficiency !== undefined
        ? trans.__('GPU %1', percent(cost.gpu_efficiency))
        : trans.__('GPU not measured')
    );
  }
  return parts.join(' · ');
}

/** The exact figures behind a step's efficiency cell (its tooltip). */
export function stepEfficiencyTitle(
  cost: unknown,
  trans: TranslationBundle = UNTRANSLATED,
  held?: HeldAmount
): string {
  if (!measured(cost)) {
    return trans.__('Not measured (a cached step, or a run recorded before efficiency was measured)');
  }
  return efficiencyParts(cost, trans, held)?.join('; ') ?? '';
}

/** A cluster's warnings as the listing gives them (waste, environment drift); strings only. */
export function clusterWarnings(cluster: { warnings?: unknown }): string[] {
  const warnings = cluster.warnings;
  return Array.isArray(warnings) ? warnings.filter((w): w is string => typeof w === 'string' && w !== '') : [];
}

/** A run's right-sizing suggestions (run.json's `suggestions`); well-formed ones only. */
export function runSuggestions(run: { suggestions?: unknown }): ISuggestion[] {
  const list = run.suggestions;
  return Array.isArray(list)
    ? list.filter((s): s is ISuggestion => !!s && typeof s === 'object' && typeof s.text === 'string')
    : [];
}

/** Whether a suggestion asks for a change (the server writes "well sized" otherwise). */
export function asksForChange(s: ISuggestion): boolean {
  return !!s.suggest && Object.keys(s.suggest).length > 0;
}
