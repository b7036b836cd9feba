/**
 * A cluster's hosts and GPUs as small multiples, in a dockable panel: one card per
 * host (CPU, memory, each GPU's utilisation), one GPU enlarged on click. The series
 * come from our server only (`GET aiinfra/api/clusters/NAME/metrics?since=T`,
 * polled while the panel is open), never from the workers. Opened by the one chart
 * command (commands/charts.ts: `aiinfra:open-chart {chart: 'hosts', cluster: NAME}`),
 * from the sidebar's charts switched to a cluster, and restored after a reload.
 */

import { MainAreaWidget, ReactWidget } from '@jupyterlab/apputils';
import { ITranslator } from '@jupyterlab/translation';
import { LabIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import { apiUrl } from './api';
import {
  emptySeries,
  gpusOf,
  IClusterSeries,
  IHostSample,
  IHostSeries,
  IMetricsReply,
  mergeSeries,
  points,
  polyline
} from './clusterseries';
import { clusterWarnings, efficiencyParts } from './efficiency';
import { bundle, TranslationBundle } from './i18n';
import { PanelModel } from './model';

const POLL_MS = 2000;

export class ClusterChartsPanel extends MainAreaWidget<ReactWidget> {
  constructor(options: { model: PanelModel; name: string; icon?: LabIcon; translator?: ITranslator }) {
    const trans = bundle(options.translator);
    const view = new Private.View(options.model, options.name, trans);
    super({ content: view });
    this.cluster = options.name;
    this.id = `aiinfra-cluster-charts-${options.name}`;
    this.title.label = trans.__('%1: hosts', options.name);
    this.title.closable = true;
    if (options.icon) {
      this.title.icon = options.icon;
    }
    this.addClass('aiinfra-cluster-charts');
    this.node.dataset.cluster = options.name;
    this._view = view;
  }

  readonly cluster: string;

  dispose(): void {
    this._view.stop();
    super.dispose();
  }

  private _view: Private.View;
}

namespace Private {
  const W = 240;
  const H = 48;

  export class View extends ReactWidget {
    constructor(
      private model: PanelModel,
      private name: string,
      private trans: TranslationBundle
    ) {
      super();
      this.addClass('aiinfra-chart-content');
      void this.poll();
    }

    stop(): void {
      this.stopped = true;
      if (this.timer !== null) {
        clearTimeout(this.timer);
      }
    }

    private async poll(): Promise<void> {
      if (this.stopped) {
        return;
      }
      try {
        const { requester } = this.model;
        let url = apiUrl(requester.baseUrl, 'clusters', this.name, 'metrics');
        if (this.series.since !== null) {
          url += `?since=${encodeURIComponent(String(this.series.since))}`;
        }
        const response = await requester.fetcher(url, { method: 'GET' });
        const body = await response.json();
        if (response.ok) {
          this.series = mergeSeries(this.series, body as IMetricsReply);
          this.error = '';
        } else {
          this.error = String(body?.message ?? `HTTP ${response.status}`);
        }
      } catch (reason) {
        this.error = String(reason);
      }
      this.update();
      if (!this.stopped) {
        this.timer = setTimeout(() => void this.poll(), POLL_MS);
      }
    }

    render(): JSX.Element {
      const trans = this.trans;
      const hosts = [...this.series.hosts.values()];
      const focus = this.focus;
      const focused = focus ? this.series.hosts.get(focus.host) : undefined;
      const cluster = this.model.cluster(this.name);
      const used = cluster ? efficiencyParts(cluster.cost, trans) : null;
      const warnings = cluster ? clusterWarnings(cluster as { warnings?: unknown }) : [];
      return (
        <div className="aiinfra-chart">
          {used && (
            <div className="aiinfra-cluster-efficiency">
              <span className="aiinfra-efficiency-label">{trans.__('efficiency:')} </span>
              {used.join(' · ')}
            </div>
          )}
          {warnings.map(w => (
            <div className="aiinfra-warning" key={w}>
              <span className="aiinfra-warning-label">{trans.__('warning:')}</span> {w}
            </div>
          ))}
          {this.error && <div className="aiinfra-note aiinfra-error">{this.error}</div>}
          {this.series.note && <div className="aiinfra-note">{this.series.note}</div>}
          {hosts.length === 0 && !this.error && <div className="aiinfra-note">{trans.__('No samples yet.')}</div>}
          {focus && focused && (
            <BigGpu series={focused} index={focus.gpu} trans={trans} onClose={() => this.setFocus(null)} />
          )}
          <div className="aiinfra-host-grid">
            {hosts.map(h => (
              <HostCard key={h.host} series={h} trans={trans} onGpu={gpu => this.setFocus({ host: h.host, gpu })} />
            ))}
          </div>
        </div>
      );
    }

    private setFocus(focus: { host: string; gpu: number } | null): void {
      this.focus = focus;
      this.update();
    }

    private series: IClusterSeries = emptySeries();
    private error = '';
    private focus: { host: string; gpu: number } | null = null;
    private stopped = false;
    private timer: ReturnType<typeof setTimeout> | null = null;
  }

  function Spark(props: {
    title: string;
    line: [number, number][];
    top: number;
    unit: string;
    width?: number;
    height?: number;
  }): JSX.Element {
    const { line, top, unit } = props;
    const width = props.width ?? W;
    const height = props.height ?? H;
    const last = line.length ? line[line.length - 1][1] : null;
    return (
      <div className="aiinfra-spark" data-title={props.title}>
        <div className="aiinfra-chart-title">
          {props.title}: {last === null ? '-' : `${last.toFixed(unit === '%' ? 0 : 1)}${unit}`}
        </div>
        <svg className="aiinfra-chart-svg" viewBox={`0 0 ${width} ${height}`} width={width} height={height} role="img">
          <polyline
            fill="none"
            stroke="var(--jp-brand-color1)"
            strokeWidth={1.5}
            vectorEffect="non-scaling-stroke"
            points={polyline(line, width, height, top)}
          />
        </svg>
      </div>
    );
  }

  const GIB = 2 ** 30;
  const memoryGiB = (s: IHostSample) => (s.host?.memory_used ?? null) === null ? null : s.host!.memory_used! / GIB;

  function HostCard(props: { series: IHostSeries; trans: TranslationBundle; onGpu: (index: number) => void }): JSX.Element {
    const { series, trans } = props;
    const latest = series.samples[series.samples.length - 1];
    const total = latest?.host?.memory_total ? latest.host.memory_total / GIB : 1;
    return (
      <div className="aiinfra-host-card" data-host={series.host}>
        <div className="aiinfra-host-name">
          <strong>{series.host}</strong>{' '}
          <span className="aiinfra-dim">{trans._n('%1 worker', '%1 workers', series.workers)}</span>
        </div>
        <Spark title={trans.__('CPU')} line={points(series.samples, s => s.host?.cpu_percent)} top={100} unit="%" />
        <Spark title={trans.__('Memory (GiB)')} line={points(series.samples, memoryGiB)} top={total} unit="" />
        {gpusOf(series).map(gpu => (
          <div
            key={gpu.index}
            className="aiinfra-gpu-tile"
            data-gpu={gpu.index}
            title={trans.__('Enlarge GPU %1', gpu.index)}
            role="button"
            tabIndex={0}
            onClick={() => props.onGpu(gpu.index)}
            onKeyDown={event => {
              if (event.key === 'Enter' || event.key === ' ') {
                event.preventDefault();
                props.onGpu(gpu.index);
              }
            }}
          >
            <Spark
              title={trans.__('GPU %1', gpu.index)}
              line={points(series.samples, s => s.gpus.find(g => g.index === gpu.index)?.utilization)}
              top={100}
              unit="%"
            />
          </div>
        ))}
        {series.reason && gpusOf(series).length === 0 && <div className="aiinfra-dim">{series.reason}</div>}
      </div>
    );
  }

  function BigGpu(props: { series: IHostSeries; index: number; trans: TranslationBundle; onClose: () => void }): JSX.Element {
    const { series, index, trans } = props;
    const gpu = (s: IHostSample) => s.gpus.find(g => g.index === index);
    const latest = series.samples[series.samples.length - 1];
    const total = (latest && gpu(latest)?.memory_total) || GIB;
    return (
      <div className="aiinfra-gpu-enlarged" data-host={series.host} data-gpu={index}>
        <div className="aiinfra-chart-title">
          {trans.__('%1, GPU %2', series.host, index)} {latest && gpu(latest)?.name}{' '}
          <button className="jp-Button jp-mod-minimal" onClick={props.onClose}>
            {trans.__('Back to all hosts')}
          </button>
        </div>
        <Spark title={trans.__('Utilisation')} line={points(series.samples, s => gpu(s)?.utilization)} top={100} unit="%" width={600} height={120} />
        <Spark
          title={trans.__('Memory (GiB)')}
          line={points(series.samples, s => (gpu(s)?.memory_used ?? null) === null ? null : gpu(s)!.memory_used! / GIB)}
          top={total / GIB}
          unit=""
          width={600}
          height={120}
        />
        <Spark title={trans.__('Power (W)')} line={points(series.samples, s => gpu(s)?.power_watts)} top={1000} unit=" W" width={600} height={80} />
      </div>
    );
  }
}
