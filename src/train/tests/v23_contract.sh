#!/usr/bin/env bash
# NordIQ v2.3's documented admin requests, as its operators' scripts make them (curl + jq):
# each phase reads the fields v2.3 documented and fails (exit ≠ 0, naming the field) when
# one is missing or wrong. Usage: v23_contract.sh unready|retrain|reload; API_KEY and
# DAEMON_URL in the environment (the test sets them).
set -euo pipefail
: "${API_KEY:?}" "${DAEMON_URL:?}"

get() { curl -s -H "X-API-Key: $API_KEY" "$DAEMON_URL$1"; }
post() { curl -s -X POST -H "X-API-Key: $API_KEY" "$DAEMON_URL$1"; }
# expect JSON JQ-FILTER WHAT: the filter must hold (jq -e) on the JSON.
expect() {
    if ! jq -e "$2" >/dev/null <<<"$1"; then
        echo "v2.3 contract: $3: \`$2\` does not hold on: $1" >&2
        exit 1
    fi
}

case "${1:?phase}" in
unready)
    # Before the first job: idle; a trigger on an empty buffer is rejected up front.
    STATUS=$(get /admin/training-status)
    expect "$STATUS" '.status == "idle" and .progress_pct == 0' "training-status before any job"
    STATS=$(get /admin/training-stats)
    expect "$STATS" '.ready_to_train == false and (.ready_reason | type == "string")' "training-stats readiness"
    expect "$STATS" '.data_buffer | has("total_records") and has("file_count") and has("date_range") and has("disk_usage_mb")' "training-stats data_buffer"
    expect "$STATS" '.config.training_days > 0 and .config.min_records_threshold > 0' "training-stats config"
    expect "$STATS" '.current_job == null and .history.total_trainings == 0' "training-stats history"
    RESPONSE=$(post "/admin/trigger-training?epochs=5&incremental=true")
    expect "$RESPONSE" '.success == false and .status == "rejected" and (.error | test("not ready"))' "trigger-training on an unready buffer"
    ;;
retrain)
    # The weekly retraining script: check readiness, trigger, poll progress to the end.
    STATS=$(get /admin/training-stats)
    READY=$(jq -r '.ready_to_train' <<<"$STATS")
    if [ "$READY" != "true" ]; then
        echo "not ready to train: $(jq -r '.ready_reason' <<<"$STATS")" >&2
        exit 1
    fi
    RESPONSE=$(post "/admin/trigger-training?epochs=2&incremental=true")
    expect "$RESPONSE" '.success == true and .status == "queued" and .epochs == 2 and .incremental == true' "trigger-training"
    JOB_ID=$(jq -r '.job_id' <<<"$RESPONSE")
    [ -n "$JOB_ID" ] && [ "$JOB_ID" != null ] || { echo "no job_id in $RESPONSE" >&2; exit 1; }
    for _ in $(seq 1 600); do
        STATUS=$(get "/admin/training-status?job_id=$JOB_ID")
        PROGRESS=$(jq -r '.progress_pct' <<<"$STATUS")
        STATUS_VAL=$(jq -r '.status' <<<"$STATUS")
        echo "Status: $STATUS_VAL | Progress: $PROGRESS%"
        expect "$STATUS" '.progress_pct | type == "number"' "training-status progress_pct"
        if [ "$STATUS_VAL" != "running" ] && [ "$STATUS_VAL" != "queued" ]; then
            break
        fi
        sleep 0.5
    done
    expect "$STATUS" '.status == "completed" and .progress_pct == 100' "the job's end"
    expect "$STATUS" '.epochs == 2 and .incremental == true and (.started_at | type == "string") and (.completed_at | type == "string") and (.duration_seconds | type == "number") and (.model_path | type == "string") and .error == null' "training-status fields"
    STATS=$(get /admin/training-stats)
    expect "$STATS" '.history.total_trainings == 1 and .history.successful == 1 and (.history.last_training | type == "string")' "training-stats history after a job"
    # blocking=true answers when the job has ended.
    RESPONSE=$(post "/admin/trigger-training?epochs=1&incremental=false&blocking=true&force=true")
    expect "$RESPONSE" '.success == true and .status == "completed" and .progress_pct == 100 and .incremental == false' "trigger-training blocking=true"
    ;;
reload)
    # The reload-and-verify calls.
    MODELS=$(get /admin/models)
    expect "$MODELS" '.count >= 2 and (.models | all(has("name") and has("path") and has("created") and has("is_current")))' "models[]"
    expect "$MODELS" '[.models[] | select(.is_current)] | length == 1' "models[].is_current"
    CURRENT=$(jq -r '.models[] | select(.is_current) | .name' <<<"$MODELS")
    OLDEST=$(jq -r '.models[0].name' <<<"$MODELS")
    RESPONSE=$(post "/admin/reload-model?model_path=models/$OLDEST")
    expect "$RESPONSE" '.success == true and (.previous_model | type == "string") and (.new_model | type == "string") and (.reload_time_seconds | type == "number")' "reload-model?model_path=models/…"
    expect "$RESPONSE" ".new_model == \"$OLDEST\"" "reload-model loads the model asked for"
    RESPONSE=$(post /admin/reload-model)
    expect "$RESPONSE" ".success == true and .new_model == \"$CURRENT\" and .previous_model == \"$OLDEST\"" "reload-model without a path"
    RESPONSE=$(post "/admin/reload-model?model_path=../jobs")
    expect "$RESPONSE" '.success == false and (.error | test("outside the models directory"))' "reload-model outside the models directory"
    INFO=$(get /admin/model-info)
    expect "$INFO" ".loaded == true and .mode == \"tft\" and .model_name == \"$CURRENT\" and (.model_path | type == \"string\")" "model-info"
    expect "$INFO" '.config.max_prediction_length > 0 and .config.max_encoder_length > 0 and .servers.total > 0' "model-info config and servers"
    expect "$INFO" '.training_config | type == "object"' "model-info training_config"
    # Cancel: nothing runs, so v2.3's scripts see success false with the reason.
    RESPONSE=$(post /admin/cancel-training)
    expect "$RESPONSE" '.success == false and (.error | type == "string")' "cancel-training with nothing running"
    ;;
*)
    echo "unknown phase $1" >&2
    exit 64
    ;;
esac
echo "v2.3 contract: $1 ok"
