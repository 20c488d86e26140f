import { MainAreaWidget, ReactWidget } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { listIcon } from '@jupyterlab/ui-components';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import { Message } from '@lumino/messaging';
import * as React from 'react';

import { ISMDebugAPI } from './api';
import { LogsView } from './components/LogsView';
import { LogsModel } from './logs';
import { ISMDebugTab } from './tabs';
import { LogStream } from './types';

/**
 * The main-area tab of one host's log.
 */
export class LogsWidget
  extends MainAreaWidget<ReactWidget>
  implements ISMDebugTab
{
  constructor(options: {
    api: ISMDebugAPI;
    job: string;
    host: string;
    stream?: LogStream;
    trans: TranslationBundle;
  }) {
    const { api, job, host, stream, trans } = options;
    const model = new LogsModel({ api, job, host, stream });
    const content = ReactWidget.create(
      React.createElement(LogsView, { model, trans })
    );
    content.addClass('jp-SMDebug-logsContent');
    super({ content });
    this._model = model;
    this.id = LogsWidget.idFor(job, host);
    this.addClass('jp-SMDebug-logsWidget');
    this.title.icon = listIcon;
    this.title.label = trans.__('Logs · %1 · %2', host, job);
    this.title.caption = trans.__('CloudWatch log of %1 of %2', host, job);
    this.title.closable = true;
  }

  get model(): LogsModel {
    return this._model;
  }

  /**
   * The host's log again after a reload, on the stream shown.
   */
  get restoreArgs(): ReadonlyPartialJSONObject {
    const { job, host, stream } = this._model;
    return { job, host, stream };
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this._model.start();
  }

  dispose(): void {
    if (!this.isDisposed) {
      this._model.dispose();
    }
    super.dispose();
  }

  private _model: LogsModel;
}

export namespace LogsWidget {
  /**
   * The tab's id: one tab per host.
   */
  export function idFor(job: string, host: string): string {
    return `jp-SMDebug-logs-${job}-${host}`;
  }
}
