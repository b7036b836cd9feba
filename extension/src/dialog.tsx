/**
 * Dialog bodies: the start form, made from the server's backend declaration,
 * and the adapt form (minimum and maximum workers).
 *
 * The DOM is easy to query: every field has `data-option` (its option name),
 * every backend `data-backend`, and the backend's own fields sit in
 * `.aiinfra-backend-options[data-backend=NAME]`.
 */

import { ReactWidget } from '@jupyterlab/apputils';
import * as React from 'react';

import { IFailure, IForm } from './formdialog';
import { TranslationBundle, UNTRANSLATED } from './i18n';

import {
  backendChoices,
  fieldLabel,
  fieldsFor,
  FormValues,
  IBackend,
  IField,
  initialBackend,
  initialValue,
  IStartForm
} from './backends';

/**
 * A dialog body that shows a rejected value's message under its field (or
 * above the fields when no field shown here is named), keeping what was typed.
 */
export abstract class FormWidget<T> extends ReactWidget implements IForm<T> {
  abstract getValue(): T;

  setError(failure: IFailure | null): void {
    this.error = failure;
    this.update();
  }

  /** The message under the field, when the error names one of `names`. */
  protected fieldError(...names: string[]): JSX.Element | null {
    const e = this.error;
    if (!e || e.field === null || !names.includes(e.field)) {
      return null;
    }
    return (
      <div className="aiinfra-field-error" role="alert" data-error-for={e.field}>
        {e.message}
      </div>
    );
  }

  /** The message of an error about no field in `shown` (the form as a whole). */
  protected formError(shown: string[]): JSX.Element | null {
    const e = this.error;
    if (!e || (e.field !== null && shown.includes(e.field))) {
      return null;
    }
    return (
      <div className="aiinfra-field-error aiinfra-form-error" role="alert" data-error-for={e.field ?? ''}>
        {e.message}
      </div>
    );
  }

  /**
   * A labelled field, `label.aiinfra-field[data-option=NAME]` with its caption and
   * control, and under it the error about NAME (or about the fields `errorFor` names).
   */
  protected labelled(name: string, caption: string, control: JSX.Element, ...errorFor: string[]): JSX.Element {
    return (
      <>
        <label className="aiinfra-field" data-option={name}>
          <span>{caption}</span>
          {control}
        </label>
        {this.fieldError(...(errorFor.length ? errorFor : [name]))}
      </>
    );
  }

  protected error: IFailure | null = null;
}

/** A styled `select[name=NAME]` of `[value, label]` choices. */
export function choiceSelect(
  name: string,
  value: string,
  set: (value: string) => void,
  choices: [string, string][]
): JSX.Element {
  return (
    <select className="jp-mod-styled" name={name} value={value} onChange={e => set(e.target.value)}>
      {choices.map(([choice, label]) => (
        <option key={choice} value={choice}>
          {label}
        </option>
      ))}
    </select>
  );
}

/** A styled `textarea[name=NAME]` (one entry a line). */
export function textArea(
  name: string,
  value: string,
  set: (value: string) => void,
  rows: number,
  placeholder: string
): JSX.Element {
  return (
    <textarea
      className="jp-mod-styled"
      name={name}
      rows={rows}
      placeholder={placeholder}
      value={value}
      onChange={e => set(e.target.value)}
    />
  );
}

/** The start-cluster form; its value is what `formToBody` turns into the POST body. */
export class StartClusterForm extends FormWidget<IStartForm> {
  constructor(options: StartClusterForm.IOptions) {
    super();
    this._backends = options.backends;
    this._error = options.error ?? null;
    this._auto = options.auto ?? null;
    this._trans = options.trans ?? UNTRANSLATED;
    this._backend = initialBackend(options.backends, options.defaultBackend);
    this.addClass('aiinfra-start-form');
    this.addClass('aiinfra-form');
  }

  /** The server names some fields by their CLI flag (`idle-timeout`): the form by option name. */
  setError(failure: IFailure | null): void {
    super.setError(failure && { ...failure, field: failure.field?.replace(/-/g, '_') ?? null });
  }

  /** The chosen backend and the raw inputs of the fields it shows. */
  getValue(): IStartForm {
    return { backend: this._backend, values: { ...this._values } };
  }

  render(): JSX.Element {
    const trans = this._trans;
    const choices = backendChoices(this._backends, this._auto, trans);
    const fields = fieldsFor(this._backends, this._backend, this._auto, trans);
    const chosen = choices.find(b => b.name === this._backend);
    const shown = ['backend', ...fields.map(f => f.option.name)];
    const under = (f: IField) => this.fieldError(f.option.name);
    const render = (f: IField) => Private.renderField(f, this._values, this._set, under(f), trans);
    const own = fields.slice(1).filter(f => !f.common);
    return (
      <div className="aiinfra-start-body">
        {this._error && <div className="aiinfra-error">{trans.__('Backends not listed: %1', this._error)}</div>}
        {this.formError(shown)}
        {render(fields[0])}
        <div className="aiinfra-option" data-option="backend">
          <label className="aiinfra-field">
            <span className="aiinfra-field-label">{trans.__('Backend')}</span>
            <select
              className="jp-mod-styled"
              name="backend"
              value={this._backend}
              onChange={e => this._choose(e.target.value)}
            >
              {choices.map(b => (
                <option
                  key={b.name}
                  value={b.name}
                  data-backend={b.name}
                  disabled={!b.usable}
                  title={b.usable ? b.description : b.reason ?? ''}
                >
                  {b.usable
                    ? b.name
                    : trans.__('%1 (not usable: %2)', b.name, b.reason ?? trans.__('no reason given'))}
                </option>
              ))}
            </select>
          </label>
          {this.fieldError('backend')}
          {chosen && <div className="aiinfra-help aiinfra-backend-description">{chosen.description}</div>}
        </div>
        {fields
          .slice(1)
          .filter(f => f.common)
          .map(render)}
        <div className="aiinfra-backend-options" data-backend={this._backend}>
          {own.length > 0 && (
            <div className="aiinfra-backend-options-title">{trans.__('Options of %1', this._backend)}</div>
          )}
          {own.map(render)}
        </div>
      </div>
    );
  }

  private _choose(name: string): void {
    this._backend = name;
    this.update();
  }

  private _set = (name: string, value: string | boolean): void => {
    this._values = { ...this._values, [name]: value };
    this.update();
  };

  private _backends: IBackend[];
  private _backend: string;
  private _error: string | null;
  private _auto: string | null;
  private _trans: TranslationBundle;
  private _values: FormValues = {};
}

export namespace StartClusterForm {
  export interface IOptions {
    /** The server's backends (`GET aiinfra/api/backends`). */
    backends: IBackend[];
    /** The backend preselected when offered and usable (the setting `defaultBackend`). */
    defaultBackend?: string;
    /** Why the backends could not be listed, shown above the fields. */
    error?: string | null;
    /** The backend the server's `auto` picks here: `auto` shows its defaults. */
    auto?: string | null;
    trans?: TranslationBundle;
  }
}

/** Minimum and maximum workers of an adaptive cluster. */
export class AdaptForm extends FormWidget<AdaptForm.IValue> {
  constructor(options: AdaptForm.IOptions) {
    super();
    this._value = { minimum: options.minimum, maximum: options.maximum };
    this._trans = options.trans ?? UNTRANSLATED;
    this.addClass('aiinfra-adapt-form');
    this.addClass('aiinfra-form');
  }

  getValue(): AdaptForm.IValue {
    return { ...this._value };
  }

  render(): JSX.Element {
    const set = (key: keyof AdaptForm.IValue) => (e: React.ChangeEvent<HTMLInputElement>) => {
      this._value = { ...this._value, [key]: e.target.value };
      this.update();
    };
    const trans = this._trans;
    const shown = ['adapt', 'minimum', 'maximum'];
    return (
      <div>
        <div className="aiinfra-form-help">
          {trans.__('Dask adds and removes workers with the load, between these: 0 or more, minimum <= maximum.')}
        </div>
        {this.formError(shown)}
        {(['minimum', 'maximum'] as const).map(key => (
          <label className="aiinfra-field" data-option={key} key={key}>
            <span className="aiinfra-field-label">{key === 'minimum' ? trans.__('Minimum') : trans.__('Maximum')}</span>
            <input
              className="jp-mod-styled"
              name={key}
              inputMode="numeric"
              value={this._value[key]}
              onChange={set(key)}
            />
          </label>
        ))}
        {this.fieldError(...shown)}
      </div>
    );
  }

  private _value: AdaptForm.IValue;
  private _trans: TranslationBundle;
}

export namespace AdaptForm {
  export interface IValue {
    minimum: string;
    maximum: string;
  }
  export interface IOptions extends IValue {
    trans?: TranslationBundle;
  }
}

/** How many workers a cluster should have. */
export class ScaleForm extends FormWidget<string> {
  constructor(workers: number, trans: TranslationBundle = UNTRANSLATED) {
    super();
    this._workers = String(workers);
    this._trans = trans;
    this.addClass('aiinfra-scale-form');
    this.addClass('aiinfra-form');
  }

  getValue(): string {
    return this._workers;
  }

  render(): JSX.Element {
    const trans = this._trans;
    return (
      <div>
        <div className="aiinfra-form-help">
          {trans.__('Workers from now on: 0 or more (0 keeps the scheduler, without workers).')}
        </div>
        {this.formError(['workers'])}
        <label className="aiinfra-field" data-option="workers">
          <span className="aiinfra-field-label">{trans.__('Workers')}</span>
          <input
            className="jp-mod-styled"
            name="workers"
            inputMode="numeric"
            value={this._workers}
            aria-invalid={this.error?.field === 'workers'}
            onChange={e => {
              this._workers = e.target.value;
              this.update();
            }}
          />
        </label>
        {this.fieldError('workers')}
      </div>
    );
  }

  private _workers: string;
  private _trans: TranslationBundle;
}

namespace Private {
  export function renderField(
    field: IField,
    values: FormValues,
    set: (name: string, value: string | boolean) => void,
    error: JSX.Element | null,
    trans: TranslationBundle
  ): JSX.Element {
    const { option, disabled } = field;
    const name = option.name;
    const raw = values[name] ?? initialValue(option);
    const placeholder = disabled
      ? trans.__('not with this backend')
      : option.default !== null && option.default !== undefined && option.type !== 'boolean'
        ? trans.__('default: %1', Array.isArray(option.default) ? option.default.join(', ') : String(option.default))
        : '';
    let input: JSX.Element;
    if (option.type === 'boolean') {
      input = (
        <input
          type="checkbox"
          name={name}
          checked={raw === true}
          disabled={disabled}
          onChange={e => set(name, e.target.checked)}
        />
      );
    } else if (option.choices && option.choices.length) {
      input = (
        <select
          className="jp-mod-styled"
          name={name}
          value={String(raw)}
          disabled={disabled}
          onChange={e => set(name, e.target.value)}
        >
          <option value="">{placeholder || trans.__('default')}</option>
          {option.choices.map(choice => (
            <option key={choice} value={choice}>
              {choice}
            </option>
          ))}
        </select>
      );
    } else if (option.type === 'list') {
      input = (
        <textarea
          className="jp-mod-styled"
          name={name}
          rows={2}
          value={String(raw)}
          placeholder={placeholder || trans.__('one per line')}
          disabled={disabled}
          onChange={e => set(name, e.target.value)}
        />
      );
    } else {
      input = (
        <input
          className="jp-mod-styled"
          name={name}
          inputMode={option.type === 'integer' || option.type === 'number' ? 'numeric' : undefined}
          value={String(raw)}
          placeholder={placeholder}
          disabled={disabled}
          onChange={e => set(name, e.target.value)}
        />
      );
    }
    return (
      <div
        className={`aiinfra-option${error ? ' aiinfra-mod-invalid' : ''}`}
        data-option={name}
        data-type={option.type}
        key={name}
      >
        <label className="aiinfra-field" title={option.help}>
          <span className="aiinfra-field-label">{fieldLabel(option)}</span>
          {input}
        </label>
        {error}
        {option.help && <div className="aiinfra-help">{option.help}</div>}
      </div>
    );
  }
}
