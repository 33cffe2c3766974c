package transforms

// Settlement: a source may acknowledge a record only once its outcome is
// durable, so that a process killed at any moment loses nothing it has
// acknowledged. The native Pub/Sub source of a local run does: it numbers
// each delivery (Message.Delivery), the number travels with the record
// (Event.Delivery, DeadLetter.Delivery, DeadLetterRow.Delivery), and each
// step that ends a record's journey settles its deliveries: the warehouse
// sinks once their rows are committed (Settle), Dedup when it drops a repeat
// (SettleRepeats: the source acknowledges it once the first copy is durable
// or would come again if the process died). Every other source leaves
// Delivery 0.
//
// Settling goes through a process-wide hook because the steps run in the
// launching process on Prism (loopback workers), the same process as the
// source's receivers; on Dataflow, which reads Pub/Sub itself, no delivery
// is numbered and the hook is never set.

// settleHook receives settled deliveries; set once, at init, by the source.
// durable says their records are committed; false, that they are repeats
// Dedup dropped.
var settleHook func(deliveries []uint64, durable bool)

// SetSettler installs the receiver of settled deliveries. Call it from an
// init function: the hook is read without synchronisation.
func SetSettler(fn func(deliveries []uint64, durable bool)) { settleHook = fn }

// Settle reports that the records of these deliveries are durable (their
// rows are committed). Zero entries (records of sources that do not
// settle) are skipped.
func Settle(deliveries []uint64) { settle(deliveries, true) }

// SettleRepeats reports that these deliveries carried repeats Dedup dropped:
// they end here, but whether their message may be acknowledged depends on
// where its first copy is, which only the source knows.
func SettleRepeats(deliveries []uint64) { settle(deliveries, false) }

func settle(deliveries []uint64, durable bool) {
	if len(deliveries) > 0 && settleHook != nil {
		settleHook(deliveries, durable)
	}
}

// AppendDelivery appends d to ds if the record has one, so that the records
// of a source that does not settle cost nothing.
func AppendDelivery(ds []uint64, d uint64) []uint64 {
	if d == 0 {
		return ds
	}
	return append(ds, d)
}
