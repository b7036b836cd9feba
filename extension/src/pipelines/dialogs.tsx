/**
 * Dialog bodies of pipelines: the run form (which pipeline, visibly, with a way
 * to pick another file; parameters made from the parsed spec, the cluster from
 * the registry, only, force; "Schedule..." where the Schedules panel is
 * installed) and the "Add to pipeline" form (after, params).
 *
 * Every input has a `name`; parameter inputs are named `STEP.KEY`, inside
 * `.aiinfra-param[data-step=STEP][data-param=KEY]`.
 */

import { ITranslator, TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { choiceSelect, FormWidget, textArea } from '../dialog';

import { bundle } from './i18n';
import { IParamField, IRunForm, ISpec, onlyChoices, paramFields } from './spec';

/** The value of the pipeline choice that asks for a file dialog. */
export const OTHER_FILE = '\u0000other';

/** The run dialog; its value is what `formToRunBody` turns into the POST body. */
export class RunPipelineForm extends FormWidget<IRunForm> {
  constructor(options: RunPipelineForm.IOptions) {
    super();
    this._spec = options.spec;
    this._clusters = options.clusters;
    this._pipelines = options.pipelines ?? [];
    this._options = options;
    this._trans = bundle(options.translator);
    this._form = { values: {}, cluster: options.cluster ?? '', only: options.only ?? '', force: false };
    this.addClass('aiinfra-run-form');
  }

  /** The spec the form is made from (another one once the user picked another pipeline). */
  get spec(): ISpec {
    return this._spec;
  }

  getValue(): IRunForm {
    return { ...this._form, values: { ...this._form.values } };
  }

  /** Make the form from another pipeline's spec: its params; cluster and force are kept. */
  setSpec(spec: ISpec): void {
    this._spec = spec;
    const only = onlyChoices(spec).includes(this._form.only) ? this._form.only : '';
    this._form = { ...this._form, values: {}, only };
    this.setError(null);
  }

  render(): JSX.Element {
    const trans = this._trans;
    const fields = paramFields(this._spec);
    const steps = this._spec.steps.map(s => s.name);
    const form = this._form;
    const shown = ['pipeline', 'cluster', 'only', 'force', ...fields.map(f => f.key)];
    const pipelines = this._pipelines.includes(this._spec.path) ? this._pipelines : [this._spec.path, ...this._pipelines];
    return (
      <div className="aiinfra-run-body">
        {this.formError(shown)}
        <div className="aiinfra-field" data-option="pipeline">
          <label htmlFor={this._pipelineId}>{trans.__('Pipeline')}</label>
          <span className="aiinfra-pipeline-choice">
            <select
              id={this._pipelineId}
              className="jp-mod-styled"
              name="pipeline"
              value={this._spec.path}
              disabled={this._loading}
              onChange={e => void this._choose(e.target.value)}
            >
              {pipelines.map(p => (
                <option key={p} value={p}>
                  {p}
                </option>
              ))}
              {this._options.pickFile && <option value={OTHER_FILE}>{trans.__('Other file…')}</option>}
            </select>
            {this._options.pickFile && (
              <button
                type="button"
                className="jp-mod-styled aiinfra-button aiinfra-pick-file"
                title={trans.__('Pick another pipeline.yaml in a file dialog')}
                onClick={() => this._options.pickFile?.()}
              >
                {trans.__('Other file…')}
              </button>
            )}
          </span>
        </div>
        {this.fieldError('pipeline')}
        <div className="aiinfra-help aiinfra-run-summary">
          {trans._n('%2: %1 step (%3)', '%2: %1 steps (%3)', steps.length, this._spec.name, steps.join(', '))}
          {', '}
          {trans._n('%1 node', '%1 nodes', this._spec.nodes.length)}
        </div>
        {fields.length === 0 && <div className="aiinfra-note">{trans.__('No step declares parameters.')}</div>}
        {steps.map(step => {
          const own = fields.filter(f => f.step === step);
          return own.length ? (
            <fieldset className="aiinfra-param-step" data-step={step} key={step}>
              <legend>{step}</legend>
              {own.map(f => (
                <React.Fragment key={f.key}>
                  {Private.field(f, form.values[f.key], this._setValue, trans)}
                  {this.fieldError(f.key)}
                </React.Fragment>
              ))}
            </fieldset>
          ) : null;
        })}
        {this.labelled(
          'cluster',
          trans.__('Cluster'),
          choiceSelect('cluster', form.cluster, cluster => this._set({ cluster }), clusterChoices(this._clusters, trans))
        )}
        {this.labelled(
          'only',
          trans.__('Only'),
          choiceSelect('only', form.only, only => this._set({ only }), [
            ['', trans.__('every step')],
            ...onlyChoices(this._spec).map(n => [n, n] as [string, string])
          ])
        )}
        <label className="aiinfra-field aiinfra-check" data-option="force">
          <span>{trans.__('Force')}</span>
          <span className="aiinfra-check-box">
            <input
              type="checkbox"
              name="force"
              checked={form.force}
              onChange={e => this._set({ force: e.target.checked })}
            />
            <span className="aiinfra-check-help">{trans.__('run every selected step, ignoring the cache')}</span>
          </span>
        </label>
        {this.fieldError('force')}
        {this._options.schedule && (
          <div className="aiinfra-run-schedule">
            <button
              type="button"
              className="jp-mod-styled aiinfra-button aiinfra-schedule-pipeline"
              title={trans.__('Run %1 on a schedule instead (cron or interval), with nobody present', this._spec.path)}
              onClick={() => this._options.schedule?.(this._spec.path)}
            >
              {trans.__('Schedule…')}
            </button>
          </div>
        )}
      </div>
    );
  }

  /** A pipeline picked in the list: a known one is loaded in place, "Other file…" asks for one. */
  private async _choose(value: string): Promise<void> {
    if (value === OTHER_FILE) {
      this._options.pickFile?.();
      return;
    }
    if (value === this._spec.path || !this._options.loadSpec) {
      return;
    }
    this._loading = true;
    this.update();
    try {
      this.setSpec(await this._options.loadSpec(value));
    } catch (error) {
      this.setError({ field: 'pipeline', message: (error as Error).message ?? String(error) });
    } finally {
      this._loading = false;
      this.update();
    }
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
  private _pipelines: string[];
  private _options: RunPipelineForm.IOptions;
  private _trans: TranslationBundle;
  private _form: IRunForm;
  private _loading = false;
  private _pipelineId = `aiinfra-run-pipeline-${++forms}`;
}

let forms = 0; // ids for label/select pairs, one per form

export namespace RunPipelineForm {
  export interface IOptions {
    /** The parsed spec (`GET aiinfra/api/pipelines/spec`). */
    spec: ISpec;
    /** Names of the registered clusters (`GET aiinfra/api/clusters`). */
    clusters: string[];
    cluster?: string;
    only?: string;
    /** Other pipelines offered in the Pipeline list (those that ran before, below the root). */
    pipelines?: string[];
    /** Loads the spec of a pipeline chosen in the list. */
    loadSpec?: (path: string) => Promise<ISpec>;
    /** "Other file…": the dialog closes and a file dialog opens (the lab shows one dialog at a time). */
    pickFile?: () => void;
    /** "Schedule…" for this pipeline; no button without it. */
    schedule?: (path: string) => void;
    translator?: ITranslator;
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
    this._trans = bundle(options.translator);
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
    const trans = this._trans;
    const v = this._value;
    const toggle = (step: string, on: boolean) => {
      const after = on ? [...v.after, step] : v.after.filter(a => a !== step);
      this._set({ after });
    };
    return (
      <div className="aiinfra-promote-body">
        {this.formError(['pipeline', 'notebook', 'name', 'after', 'params'])}
        {this.labelled(
          'pipeline',
          trans.__('Pipeline'),
          <input className="jp-mod-styled" name="pipeline" value={v.pipeline} onChange={e => this._set({ pipeline: e.target.value })} />,
          'pipeline',
          'notebook'
        )}
        {this.labelled(
          'name',
          trans.__('Step'),
          <input className="jp-mod-styled" name="name" value={v.name} onChange={e => this._set({ name: e.target.value })} />
        )}
        <div className="aiinfra-field" data-option="after">
          <span>{trans.__('After')}</span>
          {this._steps.length === 0 ? (
            <span className="aiinfra-help">{trans.__('no other steps yet')}</span>
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
        {this.labelled(
          'params',
          trans.__('Params'),
          textArea('params', v.params, params => this._set({ params }), 3, trans.__('one KEY=VALUE per line, e.g.\nlr=0.1'))
        )}
      </div>
    );
  }

  private _set(change: Partial<PromoteForm.IValue>): void {
    this._value = { ...this._value, ...change };
    this.update();
  }

  private _value: PromoteForm.IValue;
  private _steps: string[];
  private _trans: TranslationBundle;
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
    translator?: ITranslator;
  }
}

/** The cluster choices of a form: the run's own worker threads, or a registered cluster. */
export function clusterChoices(clusters: string[], trans: TranslationBundle): [string, string][] {
  return [['', trans.__('its own worker threads (no cluster)')], ...clusters.map(c => [c, c] as [string, string])];
}

/** `KEY=VALUE` lines as a params object: JSON values where they parse, strings otherwise. */
export function parseParamLines(
  text: string,
  trans: TranslationBundle = bundle()
): { params?: Record<string, unknown>; error?: string } {
  const params: Record<string, unknown> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) {
      continue;
    }
    const eq = line.indexOf('=');
    const key = eq > 0 ? line.slice(0, eq).trim() : '';
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
      return {
        error: trans.__('params: got %1; allowed: KEY=VALUE with KEY a Python identifier', JSON.stringify(line))
      };
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
  function typeName(type: IParamField['type'], trans: TranslationBundle): string {
    switch (type) {
      case 'string':
        return trans.__('text');
      case 'integer':
        return trans.__('an integer');
      case 'number':
        return trans.__('a number');
      case 'boolean':
        return trans.__('true or false');
      default:
        return trans.__('JSON');
    }
  }

  export function field(
    f: IParamField,
    raw: string | boolean | undefined,
    set: (key: string, value: string | boolean) => void,
    trans: TranslationBundle
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
        title={
          f.kind === 'grid' ? trans.__('a sweep: keep the list, or give one value to run only that one') : typeName(f.type, trans)
        }
      >
        <span>
          {f.name}
          {f.kind === 'grid' ? trans.__(' (grid)') : ''}
        </span>
        {input}
      </label>
    );
  }
}
