import type { DeliveryObserver } from './dispatcher';

/** One observer that hands each record to every one given (the inspector, usage, the trace); undefined for none. */
export function composeObservers(...observers: Array<DeliveryObserver | undefined>): DeliveryObserver | undefined {
  const present = observers.filter((observe): observe is DeliveryObserver => observe !== undefined);
  if (present.length <= 1) return present[0];
  return (record) => {
    for (const observe of present) observe(record);
  };
}
