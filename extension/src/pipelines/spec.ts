/**
 * The run dialog's data: the parsed spec the server returns
 * (`GET aiinfra/api/pipelines/spec?path=REL`), the form fields made from it,
 * and the POST body made from the form.
 *
 * Pure code (no JupyterLab runtime imports) so jest can test it.
 */

import { TranslationBundle } from '@jupyterlab/translation';

import { IRequester, requestAPI } from '../api';
import { bundle } from './i18n';

export type JSONValue = string | number | boolean | null | JSONValue[] | { [key: string]: JSONValue };

export interface ISpecStep {
  name: string;
  notebook: string;
  notebook_path: string | null;
  after: string[];
  params: Record<string, JSONValue>;
  grid: Record<string, JSONValue[]>;
  products: string[];
  kernel: string;
  timeout: number;
  retries: number;
}

export interface ISpecNode {
  name: string;
  step: string;
  upstream: string[];
}

export interface ISpec {
  path: string;
  name: string;
  folder: string | null;
  steps: ISpecStep[];
  nodes: ISpecNode[];
}

/** One input of the parameters form: a step's param or one grid axis. */
export interface IParamField {
  /** `STEP.KEY`: the name the POST body uses (and the CLI's `-p STEP.KEY=`). */
  key: string;
  step: string;
  name: string;
  kind: 'param' | 'grid';
  /** How the text is read back: the type of the value in the spec. */
  type: 'string' | 'integer' | 'number' | 'boolean' | 'json';
  /** The text the input starts with: the spec's value. */
  initial: string | boolean;
}

/** What the dialog holds: raw inputs keyed like IParamField.key, plus the run options. */
export interface IRunForm {
  values: Record<string, string | boolean>;
  cluster: string;
  only: string;
  force: boolean;
}

export interface IRunBody {
  pipeline: string;
  params?: Record<string, JSONValue>;
  cluster?: string;
  only?: string[];
  force?: boolean;
}

function typeOf(value: JSONValue): IParamField['type'] {
  if (typeof value === 'boolean') {
    return 'boolean';
  }
  if (typeof value === 'number') {
    return Number.isInteger(value) ? 'integer' : 'number';
  }
  if (typeof value === 'string') {
    return 'string';
  }
  return 'json';
}

function textOf(value: JSONValue, type: IParamField['type']): string | boolean {
  if (type === 'boolean') {
    return value as boolean;
  }
  return type === 'string' ? (value as string) : JSON.stringify(value);
}

/** Every field of the form, step by step in the spec's order: params, then grid axes. */
export function paramFields(spec: ISpec): IParamField[] {
  const fields: IParamField[] = [];
  for (const step of spec.steps) {
    for (const [name, value] of Object.entries(step.params)) {
      const type = typeOf(value);
      fields.push({ key: `${step.name}.${name}`, step: step.name, name, kind: 'param', type, initial: textOf(value, type) });
    }
    for (const [name, values] of Object.entries(step.grid)) {
      // A grid axis is edited as a JSON list; one value pins the sweep to it.
      fields.push({
        key: `${step.name}.${name}`,
        step: step.name,
        name,
        kind: 'grid',
        type: 'json',
        initial: JSON.stringify(values)
      });
    }
  }
  return fields;
}

/** Read one input back as the spec's type; an error names the field and what is allowed. */
export function parseField(
  field: IParamField,
  raw: string | boolean,
  trans: TranslationBundle = bundle()
): { value?: JSONValue; error?: string } {
  if (field.type === 'boolean') {
    return { value: raw === true };
  }
  const text = String(raw);
  if (field.type === 'string') {
    return { value: text };
  }
  if (field.type === 'integer' || field.type === 'number') {
    const n = Number(text.trim());
    if (text.trim() === '' || !isFinite(n) || (field.type === 'integer' && !Number.isInteger(n))) {
      return {
        error:
          field.type === 'integer'
            ? trans.__('%1: got %2; allowed: an integer', field.key, JSON.stringify(text))
            : trans.__('%1: got %2; allowed: a number', field.key, JSON.stringify(text))
      };
    }
    return { value: n };
  }
  try {
    const value = JSON.parse(text) as JSONValue;
    if (field.kind === 'grid') {
      // A sweep may be narrowed to one value: a bare value or a one-element list.
      const list = Array.isArray(value) ? value : [value];
      if (list.length !== 1) {
        return { error: trans.__('%1: a grid is overridden by one value; allowed: one value or [value]', field.key) };
      }
      return { value: list[0] };
    }
    return { value };
  } catch {
    return { error: trans.__('%1: got %2; allowed: JSON (e.g. [1, 2] or {"a": 1})', field.key, JSON.stringify(text)) };
  }
}

/** Whether a grid input still holds the spec's whole sweep (then it is not sent). */
function unchanged(field: IParamField, raw: string | boolean): boolean {
  if (raw === field.initial) {
    return true;
  }
  if (field.type === 'boolean' || typeof raw === 'boolean') {
    return false;
  }
  try {
    return JSON.stringify(JSON.parse(String(raw))) === JSON.stringify(JSON.parse(String(field.initial)));
  } catch {
    return false;
  }
}

/** The names `only` accepts: steps and expanded nodes (`train[lr=0.1]`). */
export function onlyChoices(spec: ISpec): string[] {
  const names = spec.steps.map(s => s.name);
  for (const node of spec.nodes) {
    if (!names.includes(node.name)) {
      names.push(node.name);
    }
  }
  return names;
}

/**
 * The `POST aiinfra/api/pipelines/runs` body: only the parameters the user
 * changed are sent (typed as in the spec), so an untouched form runs the spec as written.
 */
export function formToRunBody(
  spec: ISpec,
  form: IRunForm,
  trans: TranslationBundle = bundle()
): { body?: IRunBody; error?: string; field?: string } {
  const body: IRunBody = { pipeline: spec.path };
  const params: Record<string, JSONValue> = {};
  for (const field of paramFields(spec)) {
    const raw = form.values[field.key];
    if (raw === undefined || unchanged(field, raw)) {
      continue;
    }
    const { value, error } = parseField(field, raw, trans);
    if (error) {
      return { error, field: field.key };
    }
    params[field.key] = value as JSONValue;
  }
  if (Object.keys(params).length) {
    body.params = params;
  }
  if (form.cluster) {
    body.cluster = form.cluster;
  }
  if (form.only) {
    body.only = [form.only];
  }
  if (form.force) {
    body.force = true;
  }
  return { body };
}

/** Ask the server for the parsed spec of `path` (`GET aiinfra/api/pipelines/spec?path=`). */
export function fetchSpec(requester: IRequester, path: string): Promise<ISpec> {
  return requestAPI<ISpec>(withQuery(requester, { path }), ['pipelines', 'spec']);
}

/** A requester whose URLs carry a query string (requestAPI encodes path parts only). */
export function withQuery(requester: IRequester, query: Record<string, string>): IRequester {
  const search = new URLSearchParams(query).toString();
  return { baseUrl: requester.baseUrl, fetcher: (url, init) => requester.fetcher(`${url}?${search}`, init) };
}
