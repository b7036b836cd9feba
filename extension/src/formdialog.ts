/**
 * Dialogs whose form stays open on an error (as jupyter-scheduler's does):
 * the accept button runs `submit`; a rejected value (checked here or a 400
 * from the server naming its field) is shown under that field, with
 * everything typed kept. The dialog closes only once `submit` succeeds.
 */

import { Dialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { APIError } from './api';

/** What went wrong and which field it is about (null: the form as a whole). */
export interface IFailure {
  field: string | null;
  message: string;
}

/** A dialog body that can show a failure beside its field. */
export interface IForm<T> extends Widget {
  getValue(): T;
  setError(failure: IFailure | null): void;
}

/** A value rejected before it is sent: shown beside `field`. */
export class FormError extends Error {
  constructor(
    message: string,
    readonly field: string | null = null
  ) {
    super(message);
    this.name = 'FormError';
  }
}

/** The failure to show for an error thrown by `submit`. */
export function failureOf(error: unknown): IFailure {
  if (error instanceof FormError || error instanceof APIError) {
    return { field: error.field ?? null, message: error.message };
  }
  return { field: null, message: error instanceof Error ? error.message : String(error) };
}

/**
 * Show `body` with Cancel and `accept`; resolve true once `submit` succeeded,
 * false when the user cancelled.
 */
export async function showFormDialog<T>(options: {
  title: string;
  body: IForm<T>;
  accept: string;
  /** The cancel button's label (translated by the caller; JupyterLab's own otherwise). */
  cancel?: string;
  submit: (value: T) => Promise<void>;
}): Promise<boolean> {
  const cancel = options.cancel ? Dialog.cancelButton({ label: options.cancel }) : Dialog.cancelButton();
  const buttons = [cancel, Dialog.okButton({ label: options.accept })];
  const dialog = new FormDialog<T>({ title: options.title, body: options.body, buttons }, options.body, options.submit);
  const result = await dialog.launch();
  return result.button.accept && dialog.submitted;
}

class FormDialog<T> extends Dialog<T> {
  constructor(
    options: Partial<Dialog.IOptions<T>>,
    form: IForm<T>,
    submit: (value: T) => Promise<void>
  ) {
    super(options);
    this._buttonList = options.buttons ?? [];
    this._form = form;
    this._submit = submit;
  }

  /** Whether `submit` succeeded (the dialog then closed with its accept button). */
  submitted = false;

  resolve(index?: number): void {
    const button = this._buttonList[index ?? this._buttonList.length - 1];
    if (!button || !button.accept || this.submitted) {
      super.resolve(index);
      return;
    }
    if (this._pending) {
      return; // one submission at a time: a second click or Enter waits for the first
    }
    this._pending = true;
    this._setBusy(true);
    this._form.setError(null);
    const value = this._form.getValue();
    this._submit(value).then(
      () => {
        this._pending = false;
        this.submitted = true;
        super.resolve(index);
      },
      error => {
        this._pending = false;
        this._setBusy(false);
        this._form.setError(failureOf(error));
      }
    );
  }

  private _setBusy(busy: boolean): void {
    this.toggleClass('aiinfra-mod-submitting', busy);
    const accept = this.node.querySelector<HTMLButtonElement>('.jp-Dialog-button.jp-mod-accept');
    if (accept) {
      accept.disabled = busy;
    }
  }

  private _buttonList: ReadonlyArray<Dialog.IButton>;
  private _form: IForm<T>;
  private _submit: (value: T) => Promise<void>;
  private _pending = false;
}
