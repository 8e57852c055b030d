import type { Logger } from 'pino';
import type { EventSink } from './event-sink.js';

/** `EVENTS_SINK=log`: one JSON log line per event (development default); nothing leaves the process. */
export function createLogSink(logger: Logger): EventSink {
  const log = logger.child({ component: 'events' });
  return {
    name: 'log',
    async publish(events) {
      for (const event of events) {
        log.info({ event_id: event.eventId, event_type: event.type, subject: event.key, sequence_id: event.sequenceId, set: event.set }, 'iam event');
      }
      return { acknowledged: events.length, duplicates: 0 };
    },
    async close() {},
  };
}
