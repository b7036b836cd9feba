import { Widget } from '@lumino/widgets';

import { formToBody } from '../src/backends';
import { AdaptForm, StartClusterForm } from '../src/dialog';
import { $, check, type, waitFor } from './dom';
import { BACKENDS } from './fakeserver';

/** Render a form in the document and wait for React to draw it. */
async function mount<T extends Widget>(widget: T): Promise<T> {
  Widget.attach(widget, document.body);
  await waitFor(() => widget.node.querySelector('[data-option]'), 'the form');
  return widget;
}

const options = (form: Widget) =>
  Array.from(form.node.querySelectorAll<HTMLElement>('.aiinfra-option')).map(e => e.dataset.option);
const ownOptions = (form: Widget) =>
  Array.from(form.node.querySelectorAll<HTMLElement>('.aiinfra-backend-options [data-option]')).map(
    e => e.dataset.option
  );

async function choose(form: Widget, backend: string): Promise<void> {
  type($('select[name="backend"]', form.node)!, backend);
  await waitFor(() => $(`.aiinfra-backend-options[data-backend="${backend}"]`, form.node), `${backend}'s options`);
}

describe('start dialog made from GET backends', () => {
  let form: StartClusterForm;
  afterEach(() => form.dispose());

  it('lists every backend, unusable ones disabled with their reason', async () => {
    form = await mount(new StartClusterForm({ backends: BACKENDS, defaultBackend: 'local' }));
    const listed = Array.from(form.node.querySelectorAll<HTMLOptionElement>('option[data-backend]'));
    expect(listed.map(o => o.dataset.backend)).toEqual(['auto', 'local', 'cuda', 'address', 'toy']);
    const cuda = listed.find(o => o.dataset.backend === 'cuda')!;
    expect(cuda.disabled).toBe(true);
    expect(cuda.textContent).toContain('no NVIDIA GPU (NVML not found)');
    expect(listed.filter(o => o.disabled)).toEqual([cuda]);
    expect((form.node.querySelector('select[name="backend"]') as HTMLSelectElement).value).toBe('local');
  });

  it("shows the declared defaults of the chosen backend as placeholders, auto's from the backend it picks", async () => {
    const backends = BACKENDS.map(b =>
      b.name === 'local' ? { ...b, defaults: { workers: 2, threads: 1 } } : b.name === 'toy' ? { ...b, defaults: {} } : b
    );
    form = await mount(new StartClusterForm({ backends, defaultBackend: 'auto', auto: 'local' }));
    const placeholder = (name: string) => $(`input[name="${name}"]`, form.node)!.getAttribute('placeholder');
    expect(placeholder('workers')).toBe('default: 2');
    expect(placeholder('threads')).toBe('default: 1');
    expect($('.aiinfra-backend-description', form.node)!.textContent).toContain('local here');
    await choose(form, 'local');
    expect(placeholder('workers')).toBe('default: 2');
    await choose(form, 'toy'); // declares none: nothing made up
    expect(placeholder('workers')).toBe('');
    // Each dialog says its range for workers: 1 or more to start, 0 allowed later.
    expect($('[data-option="workers"] .aiinfra-help', form.node)!.textContent).toBe(
      'At least 1 to start; Scale and Adapt take 0 later.'
    );
  });

  it("shows the common fields always and a backend's own options when it is chosen", async () => {
    form = await mount(new StartClusterForm({ backends: BACKENDS, defaultBackend: 'local' }));
    const common = ['name', 'backend', 'workers', 'threads', 'memory', 'adapt', 'idle_timeout', 'max_workers', 'max_gpu_hours'];
    expect(options(form)).toEqual(common);
    expect(ownOptions(form)).toEqual([]);

    await choose(form, 'toy');
    expect(ownOptions(form)).toEqual(['partition', 'cores', 'fraction', 'dry_run', 'exclusive', 'rmm_pool', 'job_extra']);
    // Each type gets its input: checkbox, list textarea, choices select; defaults as placeholders.
    expect($('[data-option="dry_run"] input[type="checkbox"]', form.node)).not.toBeNull();
    expect(($('[data-option="exclusive"] input', form.node) as HTMLInputElement).checked).toBe(true);
    expect($('[data-option="job_extra"] textarea', form.node)).not.toBeNull();
    expect($('[data-option="partition"] input', form.node)!.getAttribute('placeholder')).toBe('default: debug');
    expect($('[data-option="cores"]', form.node)!.textContent).toContain('cores per job');

    await choose(form, 'address');
    expect(ownOptions(form)).toEqual(['address']);
    expect(($('input[name="workers"]', form.node) as HTMLInputElement).disabled).toBe(true);
  });

  it('reads back the body it would POST', async () => {
    form = await mount(new StartClusterForm({ backends: BACKENDS }));
    await choose(form, 'toy');
    type($('input[name="name"]', form.node)!, 'a');
    type($('input[name="workers"]', form.node)!, '2');
    type($('input[name="cores"]', form.node)!, '4');
    type($('input[name="memory"]', form.node)!, '8GB');
    check($('input[name="dry_run"]', form.node)!, true);
    check($('input[name="exclusive"]', form.node)!, false);
    type($('textarea[name="job_extra"]', form.node)!, '--constraint=a,b\n--qos=low');
    await waitFor(() => form.getValue().values.job_extra, 'the typed values');
    expect(formToBody(BACKENDS, form.getValue())).toEqual({
      body: {
        name: 'a',
        backend: 'toy',
        workers: 2,
        memory: '8GB',
        cores: 4,
        dry_run: true,
        exclusive: false,
        job_extra: ['--constraint=a,b', '--qos=low']
      }
    });
  });

  it('offers auto alone, with the reason, when the backends could not be listed', async () => {
    form = await mount(new StartClusterForm({ backends: [], error: 'HTTP 500' }));
    expect($('.aiinfra-error', form.node)!.textContent).toContain('HTTP 500');
    expect(Array.from(form.node.querySelectorAll<HTMLElement>('option[data-backend]')).map(o => o.dataset.backend)).toEqual([
      'auto'
    ]);
    expect(formToBody([], form.getValue())).toEqual({ body: { backend: 'auto' } });
  });
});

describe('adapt dialog', () => {
  it('starts from the given bounds and reads back what was typed', async () => {
    const form = await mount(new AdaptForm({ minimum: '1', maximum: '3' }));
    expect(($('input[name="maximum"]', form.node) as HTMLInputElement).value).toBe('3');
    type($('input[name="maximum"]', form.node)!, '6');
    await waitFor(() => form.getValue().maximum === '6', 'the new maximum');
    expect(form.getValue()).toEqual({ minimum: '1', maximum: '6' });
    form.dispose();
  });
});
