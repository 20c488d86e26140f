import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { SMDebugError } from '../request';
import { IProblem } from '../types';

/**
 * A failure as the server told it: what happened, and what to do.
 */
export function ErrorMessage(props: {
  /** Nothing is shown while there is none. */
  error: SMDebugError | null | undefined;
  trans: TranslationBundle;
  onRetry?: () => void;
  onDismiss?: () => void;
  className?: string;
}): JSX.Element | null {
  const { error, trans, onRetry, onDismiss } = props;
  if (!error) {
    return null;
  }
  const actions: [string, string, () => void][] = [];
  if (onRetry) {
    actions.push([trans.__('Try again'), trans.__('Try again'), onRetry]);
  }
  if (onDismiss) {
    actions.push([
      trans.__('Dismiss'),
      trans.__('Dismiss this message'),
      onDismiss
    ]);
  }
  return (
    <div
      className={`jp-SMDebug-message jp-mod-error ${props.className ?? ''}`}
      role="alert"
      data-code={error.code}
    >
      <div className="jp-SMDebug-messageText">{error.message}</div>
      {error.hint ? (
        <div className="jp-SMDebug-messageHint">{error.hint}</div>
      ) : null}
      {actions.length ? (
        <div className="jp-SMDebug-messageActions">
          {actions.map(([label, ariaLabel, onClick]) => (
            <button
              key={label}
              onClick={onClick}
              aria-label={ariaLabel}
              type="button"
              className="jp-SMDebug-linkButton"
            >
              {label}
            </button>
          ))}
        </div>
      ) : null}
    </div>
  );
}

/**
 * The pre-flight check: what in the environment keeps attaching from working,
 * each with its fix.
 */
export function ProblemsBanner(props: {
  problems: IProblem[];
  error: SMDebugError | null;
  trans: TranslationBundle;
}): JSX.Element | null {
  const { problems, error, trans } = props;
  if (problems.length === 0 && !error) {
    return null;
  }
  return (
    <div
      className="jp-SMDebug-message jp-mod-warning jp-SMDebug-problems"
      role="status"
      aria-label={trans.__('Environment problems')}
    >
      <div className="jp-SMDebug-messageTitle">
        {trans.__('Before you attach')}
      </div>
      <ul>
        {error ? (
          <li data-code={error.code}>
            <div className="jp-SMDebug-messageText">
              {trans.__('The environment check failed: %1', error.message)}
            </div>
            {error.hint ? (
              <div className="jp-SMDebug-messageHint">{error.hint}</div>
            ) : null}
          </li>
        ) : null}
        {problems.map(problem => (
          <li key={problem.code + problem.message} data-code={problem.code}>
            <div className="jp-SMDebug-messageText">{problem.message}</div>
            {problem.hint ? (
              <div className="jp-SMDebug-messageHint">{problem.hint}</div>
            ) : null}
          </li>
        ))}
      </ul>
    </div>
  );
}
