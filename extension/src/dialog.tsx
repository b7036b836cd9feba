/** The start-cluster dialog body: a small form whose value is the POST body's inputs. */

import { ReactWidget } from '@jupyterlab/apputils';
import * as React from 'react';

import { BACKENDS, emptyForm, IStartForm } from './model';

function Field(props: {
  label: string;
  name: keyof IStartForm;
  form: IStartForm;
  placeholder?: string;
  onChange: (name: keyof IStartForm, value: string) => void;
}): JSX.Element {
  return (
    <label className="aiinfra-field">
      <span>{props.label}</span>
      <input
        className="jp-mod-styled"
        name={props.name}
        value={props.form[props.name]}
        placeholder={props.placeholder}
        onChange={e => props.onChange(props.name, e.target.value)}
      />
    </label>
  );
}

export class StartClusterForm extends ReactWidget {
  private _form: IStartForm;

  constructor(defaultBackend: string) {
    super();
    this._form = emptyForm(defaultBackend);
    this.addClass('aiinfra-start-form');
  }

  getValue(): IStartForm {
    return { ...this._form };
  }

  private _set = (name: keyof IStartForm, value: string): void => {
    this._form = { ...this._form, [name]: value };
    this.update();
  };

  render(): JSX.Element {
    const form = this._form;
    const isAddress = form.backend === 'address';
    return (
      <div>
        <Field label="Name" name="name" form={form} placeholder="(a free name is picked)" onChange={this._set} />
        <label className="aiinfra-field">
          <span>Backend</span>
          <select
            className="jp-mod-styled"
            name="backend"
            value={form.backend}
            onChange={e => this._set('backend', e.target.value)}
          >
            {BACKENDS.map(b => (
              <option key={b} value={b}>
                {b}
              </option>
            ))}
          </select>
        </label>
        {isAddress ? (
          <Field label="Scheduler" name="address" form={form} placeholder="tcp://host:8786" onChange={this._set} />
        ) : (
          <>
            <Field label="Workers" name="workers" form={form} placeholder="default" onChange={this._set} />
            <Field label="Threads/worker" name="threads" form={form} placeholder="default" onChange={this._set} />
            <Field label="Memory/worker" name="memory" form={form} placeholder="e.g. 4GB or 0.5" onChange={this._set} />
            {form.backend !== 'local' && (
              <Field label="GPUs" name="gpus" form={form} placeholder="all | N | 0,2" onChange={this._set} />
            )}
          </>
        )}
      </div>
    );
  }
}
