/**
 * A GPU or host chart as a dockable main-area panel: SVG lines over the
 * sampler's history, redrawn whenever the model gets a sample (pushed or polled).
 */

import { MainAreaWidget, ReactWidget, UseSignal } from '@jupyterlab/apputils';
import { ITranslator } from '@jupyterlab/translation';
import { LabIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import { chartData, chartLabel, ChartKind, formatValue, IPlotArea } from './charts';
import { bundle, TranslationBundle } from './i18n';
import { PanelModel } from './model';

export class ChartPanel extends MainAreaWidget<ReactWidget> {
  constructor(options: ChartPanel.IOptions) {
    const { model, kind } = options;
    const trans = bundle(options.translator);
    const content = ReactWidget.create(
      <UseSignal signal={model.changed}>{() => <Private.Chart model={model} kind={kind} trans={trans} />}</UseSignal>
    );
    content.addClass('aiinfra-chart-content');
    super({ content });
    this.kind = kind;
    this.id = `aiinfra-chart-${kind}`;
    this.title.label = chartLabel(kind, trans);
    if (options.icon) {
      this.title.icon = options.icon;
    }
    this.title.closable = true;
    this.addClass('aiinfra-chart-panel');
    this.node.dataset.chart = kind;
    // Charts need samples even while the sidebar is hidden: keep the push (or poll) going.
    model.watchers += 1;
    this._model = model;
  }

  readonly kind: ChartKind;

  dispose(): void {
    if (!this.isDisposed) {
      this._model.watchers -= 1;
    }
    super.dispose();
  }

  private _model: PanelModel;
}

export namespace ChartPanel {
  export interface IOptions {
    model: PanelModel;
    kind: ChartKind;
    icon?: LabIcon;
    /** The lab's translator (strings in the 'aiinfra' domain); none: untranslated. */
    translator?: ITranslator;
  }
}

namespace Private {
  const WIDTH = 600;
  const HEIGHT = 160;
  /** Line colours from the theme (the same variables JupyterLab's own widgets use). */
  const COLOURS = [
    'var(--jp-brand-color1)',
    'var(--jp-warn-color1)',
    'var(--jp-success-color1)',
    'var(--jp-error-color1)',
    'var(--jp-accent-color1)',
    'var(--jp-brand-color3)'
  ];

  function Plot(props: { plot: IPlotArea; trans: TranslationBundle }): JSX.Element {
    const { plot, trans } = props;
    const points = plot.lines.flatMap(l => l.points);
    if (points.length === 0) {
      return (
        <div className="aiinfra-chart-plot">
          <div className="aiinfra-chart-title">{plot.title}</div>
          <div className="aiinfra-note">{trans.__('No samples yet.')}</div>
        </div>
      );
    }
    const t1 = Math.max(...points.map(p => p[0]));
    const t0 = Math.min(t1 - 60, ...points.map(p => p[0])); // at least the last minute
    const top = plot.max ?? Math.max(1, ...points.map(p => p[1])) * 1.1;
    const x = (t: number) => ((t - t0) / Math.max(1e-9, t1 - t0)) * WIDTH;
    const y = (v: number) => HEIGHT - (Math.min(v, top) / top) * HEIGHT;
    return (
      <div className="aiinfra-chart-plot" data-title={plot.title}>
        <div className="aiinfra-chart-title">
          {plot.title} <span className="aiinfra-dim">{trans.__('(axis to %1)', formatValue(top, plot.unit))}</span>
        </div>
        <svg className="aiinfra-chart-svg" viewBox={`0 0 ${WIDTH} ${HEIGHT}`} preserveAspectRatio="none" role="img">
          <line x1={0} x2={WIDTH} y1={HEIGHT / 2} y2={HEIGHT / 2} className="aiinfra-chart-grid" />
          {plot.lines.map((line, i) => (
            <polyline
              key={line.name}
              className="aiinfra-chart-line"
              data-line={line.name}
              fill="none"
              stroke={COLOURS[i % COLOURS.length]}
              strokeWidth={2}
              vectorEffect="non-scaling-stroke"
              points={line.points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ')}
            />
          ))}
        </svg>
        <div className="aiinfra-chart-legend">
          {plot.lines.map((line, i) => (
            <span key={line.name} className="aiinfra-chart-key">
              <span className="aiinfra-chart-swatch" style={{ background: COLOURS[i % COLOURS.length] }} />
              {line.name}: {formatValue(line.points[line.points.length - 1][1], plot.unit)}
            </span>
          ))}
        </div>
      </div>
    );
  }

  export function Chart(props: { model: PanelModel; kind: ChartKind; trans: TranslationBundle }): JSX.Element {
    const data = chartData(props.kind, props.model.history, props.trans);
    return (
      <div className="aiinfra-chart">
        {data.note && <div className="aiinfra-note aiinfra-chart-note">{data.note}</div>}
        {data.plots.map(plot => (
          <Plot key={plot.title} plot={plot} trans={props.trans} />
        ))}
      </div>
    );
  }
}
