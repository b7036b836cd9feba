/**
 * Dialog bodies of pipelines: the run form (parameters made from the parsed
 * spec, the cluster from the registry, only, force) and the "Add to pipeline"
 * form (after, params).
 *
 * Every input has a `name`; parameter inputs are named `STEP.KEY`, inside
 * `.aiinfra-param[data-step=STEP][data-param=KEY]`.
 */

import * as React from 'react';

import { FormWidget } from '../dialog';

import { IParamField, IRunForm, ISpec, onlyChoices, paramFields } from './spec';

/** The run dialog; its value is what `formToRunBody` turns into the POST body. */
export class RunPipelineForm extends FormWidget<IRunForm> {
  constructor(options: RunPipelineForm.IOptions) {
    super();
    this._spec = options.spec;
    this._clusters = options.clusters;
    this._form = { values: {}, cluster: options.cluster ?? '', only: options.only ?? '', force: false };
    this.addClass('aiinfra-run-form');
  }

  getValue(): IRunForm {
    return { ...this._form, values: { ...this._form.values } };
  }

  render(): JSX.Element {
    const fields = paramFields(this._spec);
    const steps = this._spec.steps.map(s => s.name);
    const form = this._form;
    const shown = ['cluster', 'only', 'force', ...fields.map(f => f.key)];
    return (
      <div className="aiinfra-run-body">
        {this.formError(shown)}
        <div className="aiinfra-help">
          {this._spec.path}: {steps.length} step{steps.length === 1 ? '' : 's'} ({steps.join(', ')}),{' '}
          {this._spec.nodes.length} node{this._spec.nodes.length === 1 ? '' : 's'}
        </div>
        {fields.length === 0 && <div className="aiinfra-note">No step declares parameters.</div>}
        {steps.map(step => {
          const own = fields.filter(f => f.step === step);
          return own.length ? (
            <fieldset className="aiinfra-param-step" data-step={step} key={step}>
              <legend>{step}</legend>
              {own.map(f => (
                <React.Fragment key={f.key}>
                  {Private.field(f, form.values[f.key], this._setValue)}
                  {this.fieldError(f.key)}
                </React.Fragment>
              ))}
            </fieldset>
          ) : null;
        })}
        <label className="aiinfra-field" data-option="cluster">
          <span>Cluster</span>
          <select
            className="jp-mod-styled"
            name="cluster"
            value={form.cluster}
            onChange={e => this._set({ cluster: e.target.value })}
          >
            <option value="">a temporary local cluster</option>
            {this._clusters.map(c => (
              <option key={c} value={c}>
                {c}
              </option>
            ))}
          </select>
        </label>
        {this.fieldError('cluster')}
        <label className="aiinfra-field" data-option="only">
          <span>Only</span>
          <select
            className="jp-mod-styled"
            name="only"
            value={form.only}
            onChange={e => this._set({ only: e.target.value })}
          >
            <option value="">every step</option>
            {onlyChoices(this._spec).map(n => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </label>
        {this.fieldError('only')}
        <label className="aiinfra-field aiinfra-check" data-option="force">
          <span>Force</span>
          <input
            type="checkbox"
            name="force"
            checked={form.force}
            onChange={e => this._set({ force: e.target.checked })}
          />
          <span className="aiinfra-help">run every selected step, ignoring the cache</span>
        </label>
        {this.fieldError('force')}
      </div>
    );
  }

  private _set(change: Partial<IRunForm>): void {
    this._form = { ...this._form, ...change };
    this.update();
  }

  private _setValue = (key: string, value: string | boolean): void => {
    this._set({ values: { ...this._form.values, [key]: value } });
  };

  private _spec: ISpec;
  private _clusters: string[];
  private _form: IRunForm;
}

export namespace RunPipelineForm {
  export interface IOptions {
    /** The parsed spec (`GET aiinfra/api/pipelines/spec`). */
    spec: ISpec;
    /** Names of the registered clusters (`GET aiinfra/api/clusters`). */
    clusters: string[];
    cluster?: string;
    only?: string;
  }
}

/** "Add to pipeline": which pipeline, the step's name, what it runs after, its params. */
export class PromoteForm extends FormWidget<PromoteForm.IValue> {
  constructor(options: PromoteForm.IOptions) {
    super();
    this._value = {
      pipeline: options.pipeline,
      name: options.name,
      after: [],
      params: ''
    };
    this._steps = options.steps ?? [];
    this.addClass('aiinfra-promote-form');
  }

  getValue(): PromoteForm.IValue {
    return { ...this._value, after: [...this._value.after] };
  }

  /** The steps `after` offers (those of the chosen pipeline, once known). */
  setSteps(steps: string[]): void {
    this._steps = steps;
    this._value = { ...this._value, after: this._value.after.filter(a => steps.includes(a)) };
    this.update();
  }

  render(): JSX.Element {
    const v = this._value;
    const toggle = (step: string, on: boolean) => {
      const after = on ? [...v.after, step] : v.after.filter(a => a !== step);
      this._set({ after });
    };
    return (
      <div className="aiinfra-promote-body">
        {this.formError(['pipeline', 'notebook', 'name', 'after', 'params'])}
        <label className="aiinfra-field" data-option="pipeline">
          <span>Pipeline</span>
          <input
            className="jp-mod-styled"
            name="pipeline"
            value={v.pipeline}
            onChange={e => this._set({ pipeline: e.target.value })}
          />
        </label>
        {this.fieldError('pipeline', 'notebook')}
        <label className="aiinfra-field" data-option="name">
          <span>Step</span>
          <input className="jp-mod-styled" name="name" value={v.name} onChange={e => this._set({ name: e.target.value })} />
        </label>
        {this.fieldError('name')}
        <div className="aiinfra-field" data-option="after">
          <span>After</span>
          {this._steps.length === 0 ? (
            <span className="aiinfra-help">no other steps yet</span>
          ) : (
            <span className="aiinfra-after">
              {this._steps
                .filter(s => s !== v.name)
                .map(s => (
                  <label key={s} className="aiinfra-after-step">
                    <input
                      type="checkbox"
                      name={`after.${s}`}
                      checked={v.after.includes(s)}
                      onChange={e => toggle(s, e.target.checked)}
                    />
                    {s}
                  </label>
                ))}
            </span>
          )}
        </div>
        {this.fieldError('after')}
        <label className="aiinfra-field" data-option="params">
          <span>Params</span>
          <textarea
            className="jp-mod-styled"
            name="params"
            rows={3}
            placeholder={'one KEY=VALUE per line, e.g.\nlr=0.1'}
            value={v.params}
            onChange={e => this._set({ params: e.target.value })}
          />
        </label>
        {this.fieldError('params')}
      </div>
    );
  }

  private _set(change: Partial<PromoteForm.IValue>): void {
    this._value = { ...this._value, ...change };
    this.update();
  }

  private _value: PromoteForm.IValue;
  private _steps: string[];
}

export namespace PromoteForm {
  export interface IValue {
    pipeline: string;
    name: string;
    after: string[];
    /** KEY=VALUE lines; values are JSON when they parse as JSON, else strings. */
    params: string;
  }
  export interface IOptions {
    pipeline: string;
    name: string;
    steps?: string[];
  }
}

/** `KEY=VALUE` lines as a params object: JSON values where they parse, strings otherwise. */
export function parseParamLines(text: string): { params?: Record<string, unknown>; error?: string } {
  const params: Record<string, unknown> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) {
      continue;
    }
    const eq = line.indexOf('=');
    const key = eq > 0 ? line.slice(0, eq).trim() : '';
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
      return { error: `params: got ${JSON.stringify(line)}; allowed: KEY=VALUE with KEY a Python identifier` };
    }
    const text = line.slice(eq + 1).trim();
    try {
      params[key] = JSON.parse(text);
    } catch {
      params[key] = text;
    }
  }
  return { params };
}

namespace Private {
  export function field(
    f: IParamField,
    raw: string | boolean | undefined,
    set: (key: string, value: string | boolean) => void
  ): JSX.Element {
    const value = raw ?? f.initial;
    const input =
      f.type === 'boolean' ? (
        <input type="checkbox" name={f.key} checked={value === true} onChange={e => set(f.key, e.target.checked)} />
      ) : (
        <input
          className="jp-mod-styled"
          name={f.key}
          value={String(value)}
          inputMode={f.type === 'integer' || f.type === 'number' ? 'numeric' : undefined}
          onChange={e => set(f.key, e.target.value)}
        />
      );
    return (
      <label
        className="aiinfra-field aiinfra-param"
        data-step={f.step}
        data-param={f.name}
        data-kind={f.kind}
        data-type={f.type}
        key={f.key}
        title={f.kind === 'grid' ? 'a sweep: keep the list, or give one value to run only that one' : f.type}
      >
        <span>
          {f.name}
          {f.kind === 'grid' ? ' (grid)' : ''}
        </span>
        {input}
      </label>
    );
  }
}
