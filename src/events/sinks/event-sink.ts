/** One SET on its way to the broker (DESIGN.md "Events": key = subject, properties = type and id). */
export interface OutboundEvent {
  /** Broker deduplication sequence id: consecutive across everything the relay sends. */
  sequenceId: number;
  eventId: string;
  /** Custos event type (`session-revoked`, ...). */
  type: string;
  /** Message key: the subject (user id), so one user's events stay in order on partitioned topics. */
  key: string;
  /** The compact SET (`typ: secevent+jwt`). */
  set: string;
}

/** What the broker confirmed of one {@link EventSink.publish} call. */
export interface PublishResult {
  /** How many leading events the broker acknowledged (stored, or dropped as duplicates). */
  acknowledged: number;
  /** Of those, how many the broker reported as duplicates (already stored earlier). */
  duplicates: number;
  /** Why the rest were not acknowledged; the relay retries them with the same sequence ids. */
  error?: Error;
}

/** Where the relay publishes. `publish` sends in order and never throws for broker trouble. */
export interface EventSink {
  readonly name: string;
  publish(events: readonly OutboundEvent[]): Promise<PublishResult>;
  close(): Promise<void>;
}

/** Message properties every Pulsar sink sets (Pulsar properties are string → string). */
export function messageProperties(event: OutboundEvent): Record<string, string> {
  return { event_type: event.type, event_id: event.eventId, content_type: 'application/secevent+jwt' };
}

/** Checks the relay's contract: sequence ids of one call are consecutive. */
export function assertConsecutive(events: readonly OutboundEvent[]): void {
  for (let i = 1; i < events.length; i += 1) {
    if (events[i]!.sequenceId !== events[0]!.sequenceId + i) {
      throw new Error(`event sink: sequence ids must be consecutive (${events[0]!.sequenceId} .. ${events[i]!.sequenceId} at ${i})`);
    }
  }
}
