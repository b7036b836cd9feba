/**
 * The start dialog's contents, made from the server's backend declaration
 * (`GET aiinfra/api/backends`), and the request bodies the dialogs send.
 *
 * Pure code (no JupyterLab runtime): the dialog renders what these functions
 * return and jest checks the bodies they build. Words come from the bundle
 * passed in (i18n.ts), untranslated by default.
 */

import { TranslationBundle, UNTRANSLATED } from './i18n';

/** The value types a backend option may declare (clusters/backends.py `Option.type`). */
export type OptionType = 'string' | 'integer' | 'number' | 'boolean' | 'size' | 'list';

/** One option as the server declares it. */
export interface IOption {
  name: string;
  flag?: string;
  type: OptionType;
  help: string;
  default?: unknown;
  choices?: string[] | null;
  /** Client-side only: a label for the common fields (backend options show their flag). */
  label?: string;
  /** Client-side only: the smallest integer accepted. */
  minimum?: number;
}

/** One backend as `GET aiinfra/api/backends` lists it. */
export interface IBackend {
  name: string;
  description: string;
  usable: boolean;
  reason: string | null;
  manages_workers: boolean;
  options: IOption[];
  /**
   * What the common fields default to with this backend (`{"workers": 2, "threads": 1}`
   * on a 2-core machine), where the backend can tell; shown as placeholders.
   */
  defaults?: Record<string, unknown>;
}

/** `auto` lets the server pick; the dialog offers it when the server does not list it. */
export const AUTO = 'auto';

/**
 * The fields of every cluster spec (clusters/spec.py `ClusterSpec`): always
 * in the dialog, whatever backend is chosen.
 *
 * Workers: at least 1 to start, so Start gives a cluster that computes (the
 * server's rule); Scale and Adapt take 0 (a scheduler kept without workers).
 * Each dialog's hint says so.
 */
export function commonOptions(trans: TranslationBundle = UNTRANSLATED): IOption[] {
  return [
    { name: 'name', label: trans.__('Name'), type: 'string', help: trans.__('Empty: a free name is picked.') },
    {
      name: 'workers',
      label: trans.__('Workers'),
      type: 'integer',
      minimum: 1,
      help: trans.__('At least 1 to start; Scale and Adapt take 0 later.')
    },
    { name: 'threads', label: trans.__('Threads/worker'), type: 'integer', minimum: 1, help: trans.__('Threads in each worker.') },
    {
      name: 'memory',
      label: trans.__('Memory/worker'),
      type: 'size',
      help: trans.__('e.g. 4GB, or 0.5 for half of this machine.')
    },
    { name: 'adapt', label: trans.__('Adapt'), type: 'string', help: trans.__('MIN:MAX: scale with the load between these.') },
    {
      name: 'idle_timeout',
      label: trans.__('Idle timeout'),
      type: 'string',
      help: trans.__('Close after this long idle, e.g. 30m.')
    },
    {
      name: 'max_workers',
      label: trans.__('Max workers'),
      type: 'integer',
      minimum: 1,
      help: trans.__('Refuse to scale or adapt beyond this.')
    },
    {
      name: 'max_gpu_hours',
      label: trans.__('Max GPU-hours'),
      type: 'number',
      help: trans.__('Stop the cluster once it has used this many.')
    }
  ];
}

/** The common fields, untranslated. */
export const COMMON_OPTIONS: readonly IOption[] = commonOptions();

/** Common fields that a backend which does not manage its workers refuses. */
export const WORKER_FIELDS: readonly string[] = ['workers', 'threads', 'memory', 'adapt', 'max_workers'];

/** What the user typed: text inputs give strings, checkboxes booleans. */
export type FormValues = Record<string, string | boolean>;

export interface IStartForm {
  backend: string;
  values: FormValues;
}

/** One field of the dialog: an option, whether it is one of the common fields, and whether the chosen backend refuses it. */
export interface IField {
  option: IOption;
  common: boolean;
  disabled: boolean;
}

/**
 * The backends the dialog offers: the server's list, with `auto` first when it is not in it.
 * `auto` takes the defaults of the backend the server says it would pick (`picked`).
 */
export function backendChoices(
  backends: readonly IBackend[],
  picked: string | null = null,
  trans: TranslationBundle = UNTRANSLATED
): IBackend[] {
  if (backends.some(b => b.name === AUTO)) {
    return [...backends];
  }
  const target = backends.find(b => b.name === picked);
  const auto: IBackend = {
    name: AUTO,
    description: target
      ? trans.__('The server picks a backend that works on this machine: %1 here.', target.name)
      : trans.__('The server picks a backend that works on this machine.'),
    usable: true,
    reason: null,
    manages_workers: true,
    options: [],
    defaults: target?.defaults
  };
  return [auto, ...backends];
}

/** The backend preselected: the wanted one when it is offered and usable, else the first usable. */
export function initialBackend(backends: readonly IBackend[], wanted?: string): string {
  const choices = backendChoices(backends);
  const found = choices.find(b => b.name === wanted && b.usable);
  return (found ?? choices.find(b => b.usable) ?? choices[0]).name;
}

/**
 * The fields shown for a backend: the common ones (disabled where the backend
 * refuses them), then the backend's own. A backend option named like a common
 * field replaces it in place (its declaration is more precise).
 */
export function fieldsFor(
  backends: readonly IBackend[],
  backendName: string,
  picked: string | null = null,
  trans: TranslationBundle = UNTRANSLATED
): IField[] {
  const backend = backendChoices(backends, picked, trans).find(b => b.name === backendName);
  const own = new Map((backend?.options ?? []).map(o => [o.name, o]));
  const defaults = backend?.defaults ?? {};
  const fields: IField[] = commonOptions(trans).map(common => {
    const option = own.get(common.name);
    own.delete(common.name);
    const refused = backend !== undefined && !backend.manages_workers && WORKER_FIELDS.includes(common.name);
    // The backend's default for a common field (workers, threads) becomes its placeholder.
    const declared = common.name in defaults ? { ...common, default: defaults[common.name] } : common;
    return { option: option ?? declared, common: true, disabled: refused && option === undefined };
  });
  for (const option of own.values()) {
    fields.push({ option, common: false, disabled: false });
  }
  return fields;
}

/** The label of a field: its own for the common ones, else the CLI flag without dashes. */
export function fieldLabel(option: IOption): string {
  if (option.label) {
    return option.label;
  }
  return (option.flag ?? option.name).replace(/^-+/, '');
}

/** The start value of an input: checkboxes start at their default, text inputs empty. */
export function initialValue(option: IOption): string | boolean {
  return option.type === 'boolean' ? option.default === true : '';
}

type Parsed = { value?: unknown; error?: string };

function bad(option: IOption, raw: string, allowed: string, trans: TranslationBundle): Parsed {
  return { error: trans.__('%1: got %2; allowed: %3', option.name, JSON.stringify(raw), allowed) };
}

/**
 * One input as the body's value: `{}` leaves it out (the server's default
 * applies), `{error}` names the field. The server checks everything again;
 * this only catches what can be told here.
 */
export function parseValue(
  option: IOption,
  raw: string | boolean | undefined,
  trans: TranslationBundle = UNTRANSLATED
): Parsed {
  if (option.type === 'boolean') {
    const value = raw === true;
    return value === (option.default === true) ? {} : { value };
  }
  const text = typeof raw === 'string' ? raw.trim() : '';
  if (!text) {
    return {};
  }
  switch (option.type) {
    case 'integer': {
      const minimum = option.minimum ?? Number.NEGATIVE_INFINITY;
      if (!/^-?\d+$/.test(text) || Number(text) < minimum) {
        return bad(
          option,
          text,
          isFinite(minimum) ? trans.__('an integer >= %1', minimum) : trans.__('an integer'),
          trans
        );
      }
      return { value: Number(text) };
    }
    case 'number':
      return text !== '' && isFinite(Number(text)) ? { value: Number(text) } : bad(option, text, trans.__('a number'), trans);
    case 'list': {
      // One item per line: items may hold commas (e.g. SLURM's --constraint=a,b).
      const items = text
        .split('\n')
        .map(s => s.trim())
        .filter(s => s !== '');
      return { value: items };
    }
    default:
      if (option.choices && option.choices.length && !option.choices.includes(text)) {
        return bad(option, text, option.choices.join(' | '), trans);
      }
      return { value: text };
  }
}

/**
 * The POST body of `aiinfra/api/clusters`: a flat object keyed by option
 * names (`{"name": "a", "backend": "cuda", "workers": 2, "gpus": "0,1"}`).
 * Empty inputs are left out (the server's defaults apply); the backend is
 * always sent, `auto` too, so an untouched form starts a cluster from the
 * defaults it shows (an empty body is refused as a mistake).
 * An error names its field (`field`), for the form to show it there.
 */
export function formToBody(
  backends: readonly IBackend[],
  form: IStartForm,
  trans: TranslationBundle = UNTRANSLATED
): { body?: Record<string, unknown>; error?: string; field?: string } {
  const backend = backendChoices(backends).find(b => b.name === form.backend);
  if (!backend) {
    const names = backendChoices(backends).map(b => b.name);
    return {
      error: trans.__('backend: got %1; allowed: %2', JSON.stringify(form.backend), names.join(' | ')),
      field: 'backend'
    };
  }
  if (!backend.usable) {
    return {
      error: trans.__('backend: %1 is not usable here: %2', backend.name, backend.reason ?? trans.__('no reason given')),
      field: 'backend'
    };
  }
  const body: Record<string, unknown> = { backend: backend.name };
  for (const field of fieldsFor(backends, backend.name, null, trans)) {
    if (field.disabled) {
      continue;
    }
    // An untouched input keeps its start value (a checkbox its default).
    const parsed = parseValue(field.option, form.values[field.option.name] ?? initialValue(field.option), trans);
    if (parsed.error) {
      return { error: parsed.error, field: field.option.name };
    }
    if (parsed.value !== undefined) {
      body[field.option.name] = parsed.value;
    }
  }
  return { body };
}

/** The PATCH body that makes a cluster adaptive: `{"adapt": "MIN:MAX"}`. */
export function adaptBody(
  minimum: string,
  maximum: string,
  trans: TranslationBundle = UNTRANSLATED
): { body?: { adapt: string }; error?: string; field?: string } {
  const low = minimum.trim();
  const high = maximum.trim();
  const got = JSON.stringify(`${low}:${high}`);
  if (!/^\d+$/.test(low) || !/^\d+$/.test(high)) {
    return { error: trans.__('adapt: got %1; allowed: MIN:MAX, integers >= 0', got), field: 'adapt' };
  }
  if (Number(low) > Number(high)) {
    return { error: trans.__('adapt: got %1; allowed: MIN <= MAX', got), field: 'adapt' };
  }
  return { body: { adapt: `${Number(low)}:${Number(high)}` } };
}

/** The bounds an adapt dialog starts from: the cluster's `"MIN:MAX"`, else its worker count. */
export function adaptBounds(adapt: string | null, workers: number): { minimum: string; maximum: string } {
  const match = /^(\d+):(\d+)$/.exec(adapt ?? '');
  if (match) {
    return { minimum: match[1], maximum: match[2] };
  }
  return { minimum: String(Math.min(1, workers)), maximum: String(Math.max(1, workers)) };
}
