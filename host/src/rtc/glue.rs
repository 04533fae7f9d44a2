//! The node's concrete wiring: the media hub as the segment source, the peer manager as the
//! HTTP API's view of the peers.

use super::{PeerManager, SegmentSource};
use crate::budget::Lease;
use crate::http::PeerView;
use crate::media::{Decision, MediaHub};
use crate::policy::{ByteRange, Request, SegmentRef};

impl SegmentSource for MediaHub {
    async fn decide(&self, request: &Request) -> Decision {
        MediaHub::decide(self, request).await
    }

    async fn fetch(&self, seg: &SegmentRef, range: ByteRange) -> Result<Lease, String> {
        self.segment_lease(seg, range)
            .await
            .map_err(|e| e.to_string())
    }
}

impl<S: SegmentSource> PeerView for PeerManager<S> {
    fn peers_json(&self) -> serde_json::Value {
        serde_json::to_value(self.snapshot()).unwrap_or(serde_json::Value::Null)
    }

    fn queues_json(&self) -> serde_json::Value {
        let snap = self.snapshot();
        let queues: Vec<serde_json::Value> = snap
            .peers
            .iter()
            .map(|p| serde_json::json!({ "peer": p.id, "channels": p.channels }))
            .collect();
        serde_json::Value::Array(queues)
    }

    fn write_metrics(&self, out: &mut String) {
        self.stats().write_prometheus(out);
    }
}
