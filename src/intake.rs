//! The durable write path for webhook deliveries, with group commit.
//!
//! Each request hands its delivery to one writer task and waits. The writer
//! takes everything queued at that moment (up to a batch limit), stores it
//! in one transaction, and only then answers each request: one commit covers
//! many deliveries, and none is acknowledged before it is on disk.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;

use crate::store::{InsertOutcome, NewDelivery, Store};

const MAX_BATCH: usize = 64;
const QUEUE_DEPTH: usize = 1024;

type Reply = oneshot::Sender<Result<InsertOutcome, ()>>;

#[derive(Clone)]
pub struct Intake {
    queue: mpsc::Sender<(NewDelivery, Reply)>,
}

#[derive(Debug, thiserror::Error)]
#[error("the delivery could not be stored")]
pub struct NotStored;

impl Intake {
    /// Starts the writer; it ends once every `Intake` handle is dropped and
    /// the queue is drained. `stored` is notified after each commit.
    pub fn start(store: Arc<dyn Store>, stored: Arc<Notify>) -> (Intake, JoinHandle<()>) {
        let (queue, receiver) = mpsc::channel(QUEUE_DEPTH);
        let writer = tokio::spawn(write_batches(store, receiver, stored));
        (Intake { queue }, writer)
    }

    /// Returns once the delivery is committed (or known to be a duplicate).
    pub async fn store(&self, delivery: NewDelivery) -> Result<InsertOutcome, NotStored> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((delivery, reply))
            .await
            .map_err(|_| NotStored)?;
        answer.await.map_err(|_| NotStored)?.map_err(|()| NotStored)
    }
}

async fn write_batches(
    store: Arc<dyn Store>,
    mut receiver: mpsc::Receiver<(NewDelivery, Reply)>,
    stored: Arc<Notify>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (deliveries, replies): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
        match store.insert_deliveries(&deliveries).await {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
                stored.notify_waiters();
            }
            Err(error) => {
                tracing::error!(error = %error, deliveries = deliveries.len(), "storing deliveries failed");
                for reply in replies {
                    let _ = reply.send(Err(()));
                }
            }
        }
    }
}
