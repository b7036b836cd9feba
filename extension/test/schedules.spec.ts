import { nullTranslator } from '@jupyterlab/translation';

import { formToScheduleBody, IScheduleForm, localTime, triggerText } from '../src/pipelines/schedules';

const trans = nullTranslator.load('aiinfra');

const FORM: IScheduleForm = {
  name: 'nightly',
  kind: 'cron',
  cron: ' 0 2 * * * ',
  tz: 'Europe/Berlin',
  every: '1h',
  params: 'n=21\ntrain.lr=0.1\ntag=hello world\n\n',
  cluster: '',
  overlap: 'skip',
  notify: 'webhook:http://127.0.0.1:9/hook\n\nemail:me@example.org'
};

describe('the schedule form', () => {
  it('makes the POST body: cron with its zone, typed params, notify lines', () => {
    const { body, error } = formToScheduleBody('jobs/report.ipynb', FORM, trans);
    expect(error).toBeUndefined();
    expect(body).toEqual({
      name: 'nightly',
      path: 'jobs/report.ipynb',
      overlap: 'skip',
      cron: '0 2 * * *',
      tz: 'Europe/Berlin',
      params: { n: 21, 'train.lr': 0.1, tag: 'hello world' },
      notify: ['webhook:http://127.0.0.1:9/hook', 'email:me@example.org']
    });
  });

  it('sends every without a zone, and the cluster when one is chosen', () => {
    const { body } = formToScheduleBody('p.yaml', { ...FORM, kind: 'every', every: '30m', params: '', notify: '', cluster: 'gpus' }, trans);
    expect(body).toEqual({ name: 'nightly', path: 'p.yaml', overlap: 'skip', every: '30m', cluster: 'gpus' });
  });

  it('names params when a line is not KEY=VALUE', () => {
    const { body, field, error } = formToScheduleBody('p.yaml', { ...FORM, params: 'import os' }, trans);
    expect(body).toBeUndefined();
    expect(field).toBe('params');
    expect(error).toMatch(/^params:/);
  });
});

describe('the panel helpers', () => {
  it('shows times in the local zone and the trigger in words', () => {
    expect(localTime(null)).toBe('—');
    const iso = '2027-03-28T03:00:00+02:00';
    expect(localTime(iso)).toBe(new Date(iso).toLocaleString());
    const s = { trigger: { cron: '0 2 * * *', tz: 'UTC' } } as any;
    expect(triggerText(s, trans)).toBe('cron 0 2 * * * (UTC)');
    expect(triggerText({ trigger: { every: '2s', seconds: 2 } } as any, trans)).toBe('every 2s');
  });
});
