import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { LogsModel } from '../logs';
import { ILogEvent, LogStream } from '../types';
import { useSignals } from './hooks';
import { ErrorMessage } from './Messages';

/**
 * A host's log in a main-area tab: the stream switch, a search box, the lines,
 * kept scrolled to the newest while the reader is at the bottom.
 */
export function LogsView(props: {
  model: LogsModel;
  trans: TranslationBundle;
}): JSX.Element {
  const { model, trans } = props;
  useSignals(model.changed);
  const body = React.useRef<HTMLDivElement>(null);
  const atBottom = React.useRef(true);
  const lines = model.matches;

  // Follow: stay at the bottom as lines arrive, unless the reader scrolled up.
  React.useLayoutEffect(() => {
    const node = body.current;
    if (node && atBottom.current) {
      node.scrollTop = node.scrollHeight;
    }
  }, [lines.length, model.lines.length]);

  const streams: [LogStream, string][] = [
    ['training', trans.__('Training')],
    ['ssm', trans.__('SSM agent')]
  ];
  return (
    <div className="jp-SMDebug-logs">
      <div className="jp-SMDebug-logsBar">
        <div
          className="jp-SMDebug-segmented"
          role="group"
          aria-label={trans.__('Log stream')}
        >
          {streams.map(([stream, label]) => (
            <button
              key={stream}
              type="button"
              className="jp-SMDebug-segment"
              aria-pressed={model.stream === stream}
              title={
                stream === 'ssm'
                  ? trans.__("The SSM agent's log (the host's /ssm stream)")
                  : trans.__("The container's output")
              }
              onClick={() => model.setStream(stream)}
            >
              {label}
            </button>
          ))}
        </div>
        <input
          type="search"
          className="jp-mod-styled jp-SMDebug-logSearch"
          placeholder={trans.__('Search the log')}
          aria-label={trans.__('Search the log')}
          value={model.search}
          onChange={event => (model.search = event.target.value)}
        />
        <span className="jp-SMDebug-logStatus" role="status">
          {statusText(model, trans)}
        </span>
      </div>
      <ErrorMessage
        error={model.error}
        trans={trans}
        onRetry={() => void model.refresh()}
      />
      <div
        ref={body}
        className="jp-SMDebug-logBody"
        role="log"
        aria-label={trans.__('Log of %1 of %2', model.host, model.job)}
        tabIndex={0}
        onScroll={event => {
          const node = event.currentTarget;
          atBottom.current =
            node.scrollHeight - node.scrollTop - node.clientHeight < 24;
        }}
      >
        {model.dropped > 0 && !model.search ? (
          <div className="jp-SMDebug-logNote">
            {trans.__('%1 older lines are not shown.', model.dropped)}
          </div>
        ) : null}
        {lines.map((line, index) => (
          <LogLine key={index} line={line} search={model.search} />
        ))}
        {model.loaded && model.lines.length === 0 && !model.error ? (
          <div className="jp-SMDebug-logNote">
            {model.streamName
              ? trans.__('The log is empty so far.')
              : model.stream === 'ssm'
                ? trans.__(
                    'No SSM agent log for this host: it starts with the first SSM session (remote debug on).'
                  )
                : trans.__('This host has written no log yet.')}
          </div>
        ) : null}
      </div>
    </div>
  );
}

function statusText(model: LogsModel, trans: TranslationBundle): string {
  if (!model.loaded) {
    return trans.__('Loading…');
  }
  const count = model.search
    ? trans.__('%1 of %2 lines match', model.matches.length, model.lines.length)
    : trans._n('%1 line', '%1 lines', model.lines.length);
  return model.following
    ? trans.__('%1 · following', count)
    : trans.__('%1 · the job has finished', count);
}

function LogLine(props: { line: ILogEvent; search: string }): JSX.Element {
  const { line, search } = props;
  const when = new Date(line.timestamp);
  return (
    <div className="jp-SMDebug-logLine">
      <time
        className="jp-SMDebug-logTime"
        dateTime={when.toISOString()}
        title={when.toISOString()}
      >
        {when.toLocaleTimeString()}
      </time>
      <span className="jp-SMDebug-logText">
        {highlight(line.message, search)}
      </span>
    </div>
  );
}

/**
 * The message with each occurrence of the search text marked.
 */
function highlight(text: string, search: string): React.ReactNode {
  if (!search) {
    return text;
  }
  const parts: React.ReactNode[] = [];
  const lower = text.toLowerCase();
  const needle = search.toLowerCase();
  let at = 0;
  for (;;) {
    const found = lower.indexOf(needle, at);
    if (found < 0) {
      break;
    }
    parts.push(text.slice(at, found));
    parts.push(
      <mark key={found}>{text.slice(found, found + needle.length)}</mark>
    );
    at = found + needle.length;
  }
  parts.push(text.slice(at));
  return parts;
}
