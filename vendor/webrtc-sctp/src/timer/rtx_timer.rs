use std::sync::{Arc, Weak};

use async_trait::async_trait;
use tokio::sync::{Mutex, Notify};
use tokio::time::{Duration, Instant};

use crate::association::RtxTimerId;

pub(crate) const RTO_INITIAL: u64 = 3000; // msec
pub(crate) const RTO_MIN: u64 = 1000; // msec
pub(crate) const RTO_MAX: u64 = 60000; // msec
pub(crate) const RTO_ALPHA: u64 = 1;
pub(crate) const RTO_BETA: u64 = 2;
pub(crate) const RTO_BASE: u64 = 8;
pub(crate) const MAX_INIT_RETRANS: usize = 8;
pub(crate) const PATH_MAX_RETRANS: usize = 5;
pub(crate) const NO_MAX_RETRANS: usize = 0;

/// rtoManager manages Rtx timeout values.
/// This is an implementation of RFC 4960 sec 6.3.1.
#[derive(Default, Debug)]
pub(crate) struct RtoManager {
    pub(crate) srtt: u64,
    pub(crate) rttvar: f64,
    pub(crate) rto: u64,
    pub(crate) no_update: bool,
}

impl RtoManager {
    /// newRTOManager creates a new rtoManager.
    pub(crate) fn new() -> Self {
        RtoManager {
            rto: RTO_INITIAL,
            ..Default::default()
        }
    }

    /// set_new_rtt takes a newly measured RTT then adjust the RTO in msec.
    pub(crate) fn set_new_rtt(&mut self, rtt: u64) -> u64 {
        if self.no_update {
            return self.srtt;
        }

        if self.srtt == 0 {
            // First measurement
            self.srtt = rtt;
            self.rttvar = rtt as f64 / 2.0;
        } else {
            // Subsequent rtt measurement
            self.rttvar = ((RTO_BASE - RTO_BETA) as f64 * self.rttvar
                + RTO_BETA as f64 * (self.srtt as i64 - rtt as i64).abs() as f64)
                / RTO_BASE as f64;
            self.srtt = ((RTO_BASE - RTO_ALPHA) * self.srtt + RTO_ALPHA * rtt) / RTO_BASE;
        }

        self.rto = (self.srtt + (4.0 * self.rttvar) as u64).clamp(RTO_MIN, RTO_MAX);

        self.srtt
    }

    /// get_rto simply returns the current RTO in msec.
    pub(crate) fn get_rto(&self) -> u64 {
        self.rto
    }

    /// reset resets the RTO variables to the initial values.
    pub(crate) fn reset(&mut self) {
        if self.no_update {
            return;
        }

        self.srtt = 0;
        self.rttvar = 0.0;
        self.rto = RTO_INITIAL;
    }

    /// set RTO value for testing
    pub(crate) fn set_rto(&mut self, rto: u64, no_update: bool) {
        self.rto = rto;
        self.no_update = no_update;
    }
}

pub(crate) fn calculate_next_timeout(rto: u64, n_rtos: usize) -> u64 {
    // RFC 4096 sec 6.3.3.  Handle T3-rtx Expiration
    //   E2)  For the destination address for which the timer expires, set RTO
    //        <- RTO * 2 ("back off the timer").  The maximum value discussed
    //        in rule C7 above (RTO.max) may be used to provide an upper bound
    //        to this doubling operation.
    if n_rtos < 31 {
        std::cmp::min(rto << n_rtos, RTO_MAX)
    } else {
        RTO_MAX
    }
}

/// rtxTimerObserver is the interface to a timer observer.
/// NOTE: Observers MUST NOT call start() or stop() method on rtxTimer
/// from within these callbacks.
#[async_trait]
pub(crate) trait RtxTimerObserver {
    async fn on_retransmission_timeout(&mut self, timer_id: RtxTimerId, n: usize);
    async fn on_retransmission_failure(&mut self, timer_id: RtxTimerId);
}

/// rtxTimer provides the retnransmission timer conforms with RFC 4960 Sec 6.3.1
/// videortc patch: one task per timer for the association's life, woken through a shared
/// deadline, instead of a task and a channel spawned on every start (5% of the node's CPU when
/// sending: the T3-rtx timer stops whenever everything is acknowledged and starts with the next
/// packet). It can also be restarted ([`RtxTimer::restart`]), which RFC 4960 6.3.2 R3 asks for
/// when a SACK acknowledges the earliest outstanding TSN: upstream only started the T3-rtx timer
/// when it was not running, so a flight that never drained (a long transfer on a long path)
/// timed out one RTO after its first packet however well it was being acknowledged, and fell
/// back to a one-packet window.
#[derive(Debug, Default)]
struct TimerState {
    /// When the timer fires; `None` while stopped.
    deadline: Option<Instant>,
    /// The RTO it was started with (ms); each expiry doubles the next interval.
    rto: u64,
    /// Expiries since it was started.
    n_rtos: usize,
    /// Whether the timer's task runs.
    spawned: bool,
    /// The timer was dropped: the task ends.
    closed: bool,
    /// Bumped by every start, restart, stop and expiry.
    generation: u64,
}

#[derive(Debug, Default)]
struct Shared {
    state: std::sync::Mutex<TimerState>,
    wake: Notify,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, TimerState> {
        // The lock is never held across a panic-prone call; a poisoned state is still valid.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[derive(Default, Debug)]
pub(crate) struct RtxTimer<T: 'static + RtxTimerObserver + Send> {
    pub(crate) timeout_observer: Weak<Mutex<T>>,
    pub(crate) id: RtxTimerId,
    pub(crate) max_retrans: usize,
    shared: Arc<Shared>,
}

impl<T: 'static + RtxTimerObserver + Send> Drop for RtxTimer<T> {
    fn drop(&mut self) {
        self.shared.state().closed = true;
        self.shared.wake.notify_one();
    }
}

impl<T: 'static + RtxTimerObserver + Send> RtxTimer<T> {
    /// A stopped timer. With `max_retrans` 0 it keeps firing until stopped and never calls
    /// `on_retransmission_failure`.
    pub(crate) fn new(
        timeout_observer: Weak<Mutex<T>>,
        id: RtxTimerId,
        max_retrans: usize,
    ) -> Self {
        RtxTimer {
            timeout_observer,
            id,
            max_retrans,
            shared: Arc::default(),
        }
    }

    /// Starts the timer to fire after `rto` ms; false (and nothing changes) if it runs.
    pub(crate) async fn start(&self, rto: u64) -> bool {
        self.arm(rto, false)
    }

    /// Starts the timer, or moves a running one's expiry to `rto` ms from now.
    pub(crate) async fn restart(&self, rto: u64) {
        self.arm(rto, true);
    }

    fn arm(&self, rto: u64, restart: bool) -> bool {
        let deadline = Instant::now() + Duration::from_millis(rto);
        let (spawn, earlier) = {
            let mut state = self.shared.state();
            let earlier = match state.deadline {
                Some(_) if !restart => return false,
                Some(at) => deadline < at,
                None => true,
            };
            state.deadline = Some(deadline);
            state.rto = rto;
            state.n_rtos = 0;
            state.generation += 1;
            let spawn = !state.spawned;
            state.spawned = true;
            (spawn, earlier)
        };
        if spawn {
            tokio::spawn(Self::run(
                Arc::clone(&self.shared),
                self.timeout_observer.clone(),
                self.id,
                self.max_retrans,
            ));
        } else if earlier {
            // A later deadline needs no wake-up: the task finds it when its sleep ends.
            self.shared.wake.notify_one();
        }
        true
    }

    async fn run(shared: Arc<Shared>, observer: Weak<Mutex<T>>, id: RtxTimerId, max_retrans: usize) {
        loop {
            let (deadline, closed) = {
                let state = shared.state();
                (state.deadline, state.closed)
            };
            if closed {
                return;
            }
            let Some(at) = deadline else {
                shared.wake.notified().await;
                continue;
            };
            if at > Instant::now() {
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = shared.wake.notified() => {}
                }
                continue;
            }
            let expired = {
                let mut state = shared.state();
                // Stopped or moved since it was read: look again.
                match state.deadline {
                    Some(at) if at <= Instant::now() => {
                        state.n_rtos += 1;
                        let n = state.n_rtos;
                        let failure = max_retrans != 0 && n > max_retrans;
                        state.deadline = if failure {
                            None
                        } else {
                            let next = calculate_next_timeout(state.rto, n);
                            Some(Instant::now() + Duration::from_millis(next))
                        };
                        state.generation += 1;
                        Some((n, failure, state.generation))
                    }
                    _ => None,
                }
            };
            let Some((n_rtos, failure, generation)) = expired else {
                continue;
            };
            let Some(observer) = observer.upgrade() else {
                return;
            };
            let mut observer = observer.lock().await;
            // The association may have stopped or restarted the timer while this waited for it
            // (a SACK that acknowledged everything): then this expiry no longer stands.
            if shared.state().generation != generation {
                continue;
            }
            if failure {
                observer.on_retransmission_failure(id).await;
            } else {
                observer.on_retransmission_timeout(id, n_rtos).await;
            }
        }
    }

    pub(crate) async fn stop(&self) {
        let mut state = self.shared.state();
        state.deadline = None;
        state.generation += 1;
    }

    pub(crate) async fn is_running(&self) -> bool {
        self.shared.state().deadline.is_some()
    }
}
