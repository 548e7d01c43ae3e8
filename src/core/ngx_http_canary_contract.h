
/*
 * The Redis contract (README, "The Redis contract"), written once: the
 * keys of a split, the fields of its hash, its states, the receipts and
 * their operations, as the module, canary-sidecar and the fuzzers name
 * them.  Plain C string literals, no nginx types: they concatenate
 * ("%V" NGX_HTTP_CANARY_KEY_RECEIPTS) and sizeof() gives their length
 * plus one.  canary-ctl cannot include this file: t/ctl_contract.t
 * checks that it names the same.
 *
 * With prefix "canary:" and split "api":
 *
 *   canary:api                 the split's hash, and the channel every
 *                              writer PUBLISHes on after a change
 *   canary:api:pin:canary      set: tenants pinned to canary
 *   canary:api:pin:stable      set: tenants pinned to stable
 *   canary:api:pin:plan        set: the tenants canary-sidecar pinned
 *   canary:api:receipts        stream: one receipt per change
 *   canary:api:sidecar         hash: canary-sidecar's own state
 *   canary:api:leader          string: canary-sidecar's lease
 *   canary:api:nodes           sorted set: the nodes (nginx) that report
 *                              the split, each scored by the Redis time
 *                              (unix ms) its record expires: the live
 *                              ones score above Redis' TIME
 *   canary:api:node:web-1      string: node web-1's record of the split
 *                              (below), expiring after its writer's
 *                              NGX_HTTP_CANARY_NODE_TTL_INTERVALS
 *                              intervals
 *
 * A node's record, one compact JSON object, written by the syncing
 * worker of each nginx every interval:
 *
 *   {"v":1,"node":"web-1","instance":"1765100000.4242","pid":4243,
 *    "split":"api","generation":7,"weight":30,"enabled":true,
 *    "guard_tripped":false,"created":1765100000,"interval_ms":1000,
 *    "hist":"us64x16x20",
 *    "stable":{"requests":N,"responses":[1xx,2xx,3xx,4xx,5xx],
 *              "upstream_errors":N,"latency":"3:10,17:2500,40:7",
 *              "window_s":S,"window_requests":N},
 *    "canary":{...}}
 *
 * The writer sets both in one EVAL: SET the record PX ttl, ZADD the
 * node with TIME + ttl, ZREMRANGEBYSCORE the members long expired.
 * ttl = NGX_HTTP_CANARY_NODE_TTL_INTERVALS * interval_ms; a node's last
 * report was at its score - ttl.
 *
 * instance: one per nginx (master) start, to tell two nginx that claim
 * one node name apart; created: unix seconds the counters start (zone
 * start), as in /canary_status; weight: percent, as in /canary_status;
 * latency: the request-time histogram, sparse "bucket:count" pairs in
 * bucket order, of the layout "hist" names (histogram.h); window_s and
 * window_requests: requests over the last whole seconds, for a rate.
 * The counters are cumulative since "created".
 */


#ifndef _NGX_HTTP_CANARY_CONTRACT_H_INCLUDED_
#define _NGX_HTTP_CANARY_CONTRACT_H_INCLUDED_


/* keys: <prefix><split> followed by these */
#define NGX_HTTP_CANARY_KEY_PIN_CANARY      ":pin:canary"
#define NGX_HTTP_CANARY_KEY_PIN_STABLE      ":pin:stable"
#define NGX_HTTP_CANARY_KEY_PIN_PLAN        ":pin:plan"
#define NGX_HTTP_CANARY_KEY_RECEIPTS        ":receipts"
#define NGX_HTTP_CANARY_KEY_SIDECAR         ":sidecar"
#define NGX_HTTP_CANARY_KEY_LEADER          ":leader"
#define NGX_HTTP_CANARY_KEY_NODES           ":nodes"
#define NGX_HTTP_CANARY_KEY_NODE            ":node:"
/* a weight change's evidence snapshot: this, then its receipt_id; and
 * their index (the sidecar's, to drop those whose receipt is gone) */
#define NGX_HTTP_CANARY_KEY_EVIDENCE        ":evidence:"
#define NGX_HTTP_CANARY_KEY_EVIDENCE_INDEX  ":evidence"


/* a node's record: its version, and the histogram layout it carries */
#define NGX_HTTP_CANARY_NODE_VERSION        1
#define NGX_HTTP_CANARY_NODE_HIST           "us64x16x20"


/* the two sides, as the pin sets, canary-ctl pin and receipts name them */
#define NGX_HTTP_CANARY_SIDE_STABLE         "stable"
#define NGX_HTTP_CANARY_SIDE_CANARY         "canary"


/* the split's hash */
#define NGX_HTTP_CANARY_FIELD_WEIGHT        "weight"
#define NGX_HTTP_CANARY_FIELD_ENABLED       "enabled"
#define NGX_HTTP_CANARY_FIELD_GENERATION    "generation"
#define NGX_HTTP_CANARY_FIELD_STATE         "state"
#define NGX_HTTP_CANARY_FIELD_UPDATED_BY    "updated_by"
#define NGX_HTTP_CANARY_FIELD_UPDATED_AT    "updated_at"
/* shadow traffic's percent, validated like weight */
#define NGX_HTTP_CANARY_FIELD_SHADOW        "shadow"

/* a cohort's weight: this, then the cohort's name */
#define NGX_HTTP_CANARY_FIELD_COHORT        "weight."


/* its states: what nginx acts on, and what the writers write */
#define NGX_HTTP_CANARY_STATE_READY         "ready"
#define NGX_HTTP_CANARY_STATE_RUNNING       "running"
#define NGX_HTTP_CANARY_STATE_PAUSED        "paused"
#define NGX_HTTP_CANARY_STATE_AWAITING      "awaiting_resume"
#define NGX_HTTP_CANARY_STATE_HALTED        "halted"
#define NGX_HTTP_CANARY_STATE_COMPLETE      "complete"
#define NGX_HTTP_CANARY_STATE_ROLLED_BACK   "rolled_back"
#define NGX_HTTP_CANARY_STATE_GUARD_TRIPPED "guard_tripped"
/* the sidecar's gradual rollback walks the weight down (not yet 0) */
#define NGX_HTTP_CANARY_STATE_ROLLING_BACK  "rolling_back"

/* updated_by of a guard's trip, before the host name */
#define NGX_HTTP_CANARY_GUARD_WRITER        "nginx-guard:"


/* a receipt: the stream entry's one field, a JSON object in it */
#define NGX_HTTP_CANARY_RECEIPT             "receipt"

/*
 * The fields every writer's receipt has, in one shape for all writers
 * (README, "Receipts"; docs/receipt.schema.json): receipt_id a random
 * (version 4) UUID, timestamp "2026-11-22T02:21:05Z" (UTC), generation
 * the one the change made; numbers as JSON numbers (weights in percent),
 * null for what was not there.
 */
#define NGX_HTTP_CANARY_RECEIPT_ID          "receipt_id"
#define NGX_HTTP_CANARY_RECEIPT_TIMESTAMP   "timestamp"
#define NGX_HTTP_CANARY_RECEIPT_OPERATION   "operation"
#define NGX_HTTP_CANARY_RECEIPT_SPLIT       "split"
#define NGX_HTTP_CANARY_RECEIPT_BY          "by"
#define NGX_HTTP_CANARY_RECEIPT_GENERATION  "generation"

/* and those some have; a change of the weight has both weights */
#define NGX_HTTP_CANARY_RECEIPT_REASON      "reason"
#define NGX_HTTP_CANARY_RECEIPT_FROM_WEIGHT "from_weight"
#define NGX_HTTP_CANARY_RECEIPT_TO_WEIGHT   "to_weight"

/* canary-ctl's: the hash's weight, enabled and state as written, and */
#define NGX_HTTP_CANARY_RECEIPT_PREVIOUS    "previous"
#define NGX_HTTP_CANARY_RECEIPT_TRIGGER     "trigger"
#define NGX_HTTP_CANARY_RECEIPT_SIDE        "side"
#define NGX_HTTP_CANARY_RECEIPT_TENANTS     "tenants"
#define NGX_HTTP_CANARY_RECEIPT_PREV_STATE  "previous_state"
#define NGX_HTTP_CANARY_RECEIPT_UNPINNED    "unpinned"
#define NGX_HTTP_CANARY_RECEIPT_KEPT_PINS   "kept_pins"
#define NGX_HTTP_CANARY_RECEIPT_CLEARED     "sidecar_cleared"

/* canary-ctl cohort's: the cohort and the weight it set */
#define NGX_HTTP_CANARY_RECEIPT_COHORT      "cohort"
#define NGX_HTTP_CANARY_RECEIPT_COHORT_WEIGHT  "cohort_weight"
/* canary-ctl shadow's: the percent it set */
#define NGX_HTTP_CANARY_RECEIPT_SHADOW      "shadow"
/* every writer's: the rollout (from the sidecar's state), and a
 * rollback's (README, "Receipts") */
#define NGX_HTTP_CANARY_RECEIPT_RELEASE     "release"
#define NGX_HTTP_CANARY_RECEIPT_STAGE       "stage"
#define NGX_HTTP_CANARY_RECEIPT_AT_STAGE    "duration_at_stage_seconds"
#define NGX_HTTP_CANARY_RECEIPT_COMPLETED   "stages_completed"
#define NGX_HTTP_CANARY_RECEIPT_ELAPSED     "rollout_elapsed_seconds"
#define NGX_HTTP_CANARY_RECEIPT_ROLLBACKS   "rollbacks_triggered"
#define NGX_HTTP_CANARY_RECEIPT_DETECTED_AT "detected_at"
#define NGX_HTTP_CANARY_RECEIPT_ROLLBACK_MS "rollback_duration_ms"
#define NGX_HTTP_CANARY_RECEIPT_FAILED      "failed_checks"

/* the receipts' operations (also the payload of the PUBLISH) */

/* canary-ctl */
#define NGX_HTTP_CANARY_OP_WEIGHT_SET       "weight_set"
#define NGX_HTTP_CANARY_OP_ENABLED          "split_enabled"
#define NGX_HTTP_CANARY_OP_DISABLED         "split_disabled"
#define NGX_HTTP_CANARY_OP_PAUSED           "rollout_paused"
#define NGX_HTTP_CANARY_OP_RESUMED          "rollout_resumed"
#define NGX_HTTP_CANARY_OP_ROLLBACK         "rollback_executed"
#define NGX_HTTP_CANARY_OP_RESET            "split_reset"
#define NGX_HTTP_CANARY_OP_PINNED           "tenants_pinned"
#define NGX_HTTP_CANARY_OP_UNPINNED         "tenants_unpinned"
#define NGX_HTTP_CANARY_OP_COHORT_SET      "cohort_weight_set"
#define NGX_HTTP_CANARY_OP_SHADOW_SET      "shadow_set"

/* the module's guard */
#define NGX_HTTP_CANARY_OP_GUARD_TRIPPED    "guard_tripped"

/* canary-sidecar (and rollback_executed, rollout_paused) */
#define NGX_HTTP_CANARY_OP_STARTED          "rollout_started"
#define NGX_HTTP_CANARY_OP_CANARY_DONE      "canary_phase_complete"
#define NGX_HTTP_CANARY_OP_PROMOTED         "traffic_promoted"
#define NGX_HTTP_CANARY_OP_AWAITING         "awaiting_resume"
#define NGX_HTTP_CANARY_OP_COMPLETE         "deployment_complete"
#define NGX_HTTP_CANARY_OP_VIOLATION        "sli_violation_detected"
#define NGX_HTTP_CANARY_OP_HALTED           "rollout_halted"
#define NGX_HTTP_CANARY_OP_HALT_CLEARED     "halt_cleared"
#define NGX_HTTP_CANARY_OP_ROLLBACK_STEP    "rollback_step"


#endif /* _NGX_HTTP_CANARY_CONTRACT_H_INCLUDED_ */
