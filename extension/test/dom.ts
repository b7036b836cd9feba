/** Driving rendered widgets in jsdom as a user would: type, pick, click, wait. */

/** Wait until `probe` returns something truthy; polls, no fixed sleeps. */
export async function waitFor<T>(probe: () => T | null | undefined | false, what: string): Promise<T> {
  const deadline = Date.now() + 10000;
  for (;;) {
    const value = probe();
    if (value) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise(resolve => setTimeout(resolve, 5));
  }
}

export function $(selector: string, root: ParentNode = document): HTMLElement | null {
  return root.querySelector<HTMLElement>(selector);
}

/** Type into an input, textarea or select the way React notices (native setter + event). */
export function type(element: Element, value: string): void {
  const proto = Object.getPrototypeOf(element);
  Object.getOwnPropertyDescriptor(proto, 'value')!.set!.call(element, value);
  const event = element instanceof HTMLSelectElement ? 'change' : 'input';
  element.dispatchEvent(new Event(event, { bubbles: true }));
}

export function check(element: Element, checked: boolean): void {
  if ((element as HTMLInputElement).checked !== checked) {
    (element as HTMLInputElement).click();
  }
}

/** The open dialog, once its body is rendered (and holds `inside`, when given: React bodies render late). */
export function dialog(inside?: string): Promise<HTMLElement> {
  return waitFor(() => {
    const content = $('.jp-Dialog .jp-Dialog-content');
    const body = content && $('.jp-Dialog-body', content);
    if (!body) {
      return null;
    }
    const ready = inside ? body.querySelector(inside) : body.textContent;
    return ready ? content : null;
  }, `a dialog${inside ? ` with ${inside}` : ''}`);
}

/** Click the dialog's accept button and wait for it to close. */
export async function accept(): Promise<void> {
  (await waitFor(() => $('.jp-Dialog button.jp-mod-accept'), 'an accept button')).click();
  await waitFor(() => !$('.jp-Dialog'), 'the dialog to close');
}

export async function cancel(): Promise<void> {
  (await waitFor(() => $('.jp-Dialog button.jp-mod-reject'), 'a cancel button')).click();
  await waitFor(() => !$('.jp-Dialog'), 'the dialog to close');
}
