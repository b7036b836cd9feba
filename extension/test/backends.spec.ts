import {
  adaptBody,
  adaptBounds,
  AUTO,
  backendChoices,
  fieldsFor,
  formToBody,
  IBackend,
  initialBackend,
  parseValue
} from '../src/backends';
import { BACKENDS } from './fakeserver';

const names = (backends: IBackend[]) => backends.map(b => b.name);
const fieldNames = (backend: string) => fieldsFor(BACKENDS, backend).map(f => f.option.name);

describe('backend choices', () => {
  it('offers auto first, then the server list, without built-in names', () => {
    expect(names(backendChoices(BACKENDS))).toEqual(['auto', 'local', 'cuda', 'address', 'toy']);
    expect(names(backendChoices([]))).toEqual(['auto']);
    expect(names(backendChoices([{ ...BACKENDS[0], name: AUTO }]))).toEqual(['auto']);
  });

  it('preselects the wanted backend only when usable', () => {
    expect(initialBackend(BACKENDS, 'toy')).toBe('toy');
    expect(initialBackend(BACKENDS, 'cuda')).toBe('auto'); // cuda is not usable here
    expect(initialBackend(BACKENDS, 'gone')).toBe('auto');
  });

  it('shows the common fields always and a backend option only with its backend', () => {
    const common = ['name', 'workers', 'threads', 'memory', 'adapt', 'idle_timeout', 'max_workers', 'max_gpu_hours'];
    expect(fieldNames('local')).toEqual(common);
    expect(fieldNames('cuda')).toEqual([...common, 'gpus', 'protocol']);
    // toy's own `memory` replaces the common one in place instead of appearing twice.
    expect(fieldNames('toy')).toEqual([...common, 'partition', 'cores', 'fraction', 'dry_run', 'exclusive', 'rmm_pool', 'job_extra']);
    expect(fieldsFor(BACKENDS, 'toy').find(f => f.option.name === 'memory')!.option.help).toBe('memory per job');
  });

  it('disables the worker fields of a backend that does not manage workers', () => {
    const disabled = fieldsFor(BACKENDS, 'address')
      .filter(f => f.disabled)
      .map(f => f.option.name);
    expect(disabled).toEqual(['workers', 'threads', 'memory', 'adapt', 'max_workers']);
  });
});

describe('values', () => {
  const option = (type: any, extra = {}) => ({ name: 'x', type, help: '', ...extra });

  it('leaves empty inputs out and types the rest', () => {
    expect(parseValue(option('integer'), ' ')).toEqual({});
    expect(parseValue(option('integer'), '3')).toEqual({ value: 3 });
    expect(parseValue(option('number'), '0.5')).toEqual({ value: 0.5 });
    expect(parseValue(option('size'), '4GB')).toEqual({ value: '4GB' });
    expect(parseValue(option('list'), 'a,b\n\n c ')).toEqual({ value: ['a,b', 'c'] });
    expect(parseValue(option('string', { choices: ['tcp', 'ucx'] }), 'ucx')).toEqual({ value: 'ucx' });
  });

  it('sends a boolean only when it differs from its default', () => {
    expect(parseValue(option('boolean', { default: false }), false)).toEqual({});
    expect(parseValue(option('boolean', { default: false }), true)).toEqual({ value: true });
    expect(parseValue(option('boolean', { default: true }), false)).toEqual({ value: false });
  });

  it('names the field and what is allowed', () => {
    expect(parseValue(option('integer'), 'two').error).toBe('x: got "two"; allowed: an integer');
    expect(parseValue(option('integer', { minimum: 1 }), '0').error).toBe('x: got "0"; allowed: an integer >= 1');
    expect(parseValue(option('number'), 'lots').error).toBe('x: got "lots"; allowed: a number');
    expect(parseValue(option('string', { choices: ['tcp', 'ucx'] }), 'udp').error).toBe(
      'x: got "udp"; allowed: tcp | ucx'
    );
  });
});

describe('start body', () => {
  it('is a flat object keyed by option names', () => {
    const form = { backend: 'cuda', values: { name: ' a ', workers: '2', gpus: '0,1', protocol: '' } };
    const usableCuda = BACKENDS.map(b => (b.name === 'cuda' ? { ...b, usable: true } : b));
    expect(formToBody(usableCuda, form)).toEqual({ body: { name: 'a', backend: 'cuda', workers: 2, gpus: '0,1' } });
  });

  it('sends the backend, auto too, and leaves empty inputs out so the server defaults apply', () => {
    // An untouched form sends the backend it shows, auto too: never an empty body (issue 29 item 1).
    expect(formToBody(BACKENDS, { backend: 'auto', values: {} })).toEqual({ body: { backend: 'auto' } });
  });

  it('drops what the chosen backend does not take', () => {
    // gpus typed while cuda was chosen, then local picked: not sent.
    const form = { backend: 'local', values: { gpus: '0', threads: '1' } };
    expect(formToBody(BACKENDS, form)).toEqual({ body: { backend: 'local', threads: 1 } });
    const address = { backend: 'address', values: { workers: '3', address: 'tcp://127.0.0.1:8786' } };
    expect(formToBody(BACKENDS, address)).toEqual({ body: { backend: 'address', address: 'tcp://127.0.0.1:8786' } });
  });

  it('refuses an unusable or unknown backend with the reason', () => {
    expect(formToBody(BACKENDS, { backend: 'cuda', values: {} }).error).toBe(
      'backend: cuda is not usable here: no NVIDIA GPU (NVML not found)'
    );
    expect(formToBody(BACKENDS, { backend: 'nope', values: {} }).error).toBe(
      'backend: got "nope"; allowed: auto | local | cuda | address | toy'
    );
  });

  it('names the first bad field', () => {
    expect(formToBody(BACKENDS, { backend: 'local', values: { workers: '0' } }).error).toMatch(/^workers: got "0"/);
    expect(formToBody(BACKENDS, { backend: 'toy', values: { cores: 'many' } }).error).toMatch(/^cores: got "many"/);
  });
});

describe('adapt', () => {
  it('builds MIN:MAX and checks the bounds', () => {
    expect(adaptBody(' 1 ', '4')).toEqual({ body: { adapt: '1:4' } });
    expect(adaptBody('0', '0')).toEqual({ body: { adapt: '0:0' } });
    expect(adaptBody('4', '1').error).toBe('adapt: got "4:1"; allowed: MIN <= MAX');
    expect(adaptBody('', '2').error).toMatch(/^adapt: got ":2"; allowed: MIN:MAX/);
  });

  it('starts from the current bounds or the worker count', () => {
    expect(adaptBounds('2:8', 3)).toEqual({ minimum: '2', maximum: '8' });
    expect(adaptBounds(null, 3)).toEqual({ minimum: '1', maximum: '3' });
    expect(adaptBounds(null, 0)).toEqual({ minimum: '0', maximum: '1' });
  });
});
