#!/usr/bin/env bash
# Start a local Spark Thrift server (HiveServer2 protocol) for the walkthrough of the README's "Run on Spark":
# the platform then reaches it as it would reach a cluster's (ONCOPIPE_ENGINE=spark ONCOPIPE_SPARK_METHOD=thrift).
# It uses the pyspark of .venv (its jars ship the Thrift server) and Java 17 (`make system-deps`).
#
#   scripts/spark_thrift_server.sh start [PORT]   # 127.0.0.1, PORT or a free port; prints the variables to export
#   scripts/spark_thrift_server.sh stop
#
# State lives under $ONCOPIPE_HOME/spark-server (default var/spark-server): tables (spark.sql.warehouse.dir), the
# Derby metastore, the pid file and the log. On a cluster the same roles are the cluster's warehouse location
# (shared storage every executor reads: HDFS, S3, a shared NFS path) and its metastore.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
HOME_DIR="${ONCOPIPE_HOME:-$ROOT/var}"
STATE="$HOME_DIR/spark-server"
PY="$ROOT/.venv/bin/python"
SPARK_HOME="$("$PY" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"
export SPARK_HOME SPARK_LOG_DIR="$STATE/logs" SPARK_PID_DIR="$STATE" SPARK_LOCAL_IP=127.0.0.1
export PYSPARK_PYTHON="$PY"

case "${1:-}" in
  start)
    mkdir -p "$STATE/logs"
    PORT="${2:-$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
    nohup "$SPARK_HOME/bin/spark-submit" \
      --class org.apache.spark.sql.hive.thriftserver.HiveThriftServer2 \
      --master "local[${ONCOPIPE_SPARK_CORES:-2}]" --driver-memory "${ONCOPIPE_SPARK_DRIVER_MEMORY:-2g}" \
      --conf spark.ui.enabled=false \
      --conf spark.sql.shuffle.partitions="${ONCOPIPE_SPARK_SHUFFLE_PARTITIONS:-4}" \
      --conf spark.sql.warehouse.dir="$STATE/tables" \
      --conf spark.sql.session.timeZone=UTC \
      --conf spark.hadoop.javax.jdo.option.ConnectionURL="jdbc:derby:;databaseName=$STATE/metastore_db;create=true" \
      --conf spark.driver.extraJavaOptions="-Dderby.system.home=$STATE" \
      --hiveconf hive.server2.thrift.bind.host=127.0.0.1 \
      --hiveconf hive.server2.thrift.port="$PORT" \
      spark-internal >"$STATE/logs/thrift-server.out" 2>&1 &
    echo $! >"$STATE/thrift-server.pid"
    for _ in $(seq 1 120); do
      if "$PY" -c "import socket, sys; s = socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', $PORT)))"; then
        echo "Spark Thrift server on 127.0.0.1:$PORT (pid $(cat "$STATE/thrift-server.pid"), log $STATE/logs)"
        echo "export ONCOPIPE_ENGINE=spark ONCOPIPE_SPARK_METHOD=thrift ONCOPIPE_SPARK_HOST=127.0.0.1 ONCOPIPE_SPARK_PORT=$PORT"
        exit 0
      fi
      kill -0 "$(cat "$STATE/thrift-server.pid")" 2>/dev/null || { tail -n 30 "$STATE/logs/thrift-server.out"; exit 1; }
      sleep 1
    done
    echo "the Thrift server did not open port $PORT in 120 s; see $STATE/logs/thrift-server.out" >&2
    exit 1
    ;;
  stop)
    if [ -f "$STATE/thrift-server.pid" ]; then
      kill "$(cat "$STATE/thrift-server.pid")" 2>/dev/null || true
      rm -f "$STATE/thrift-server.pid"
      echo "stopped"
    fi
    ;;
  *)
    echo "usage: $0 start [PORT] | stop" >&2
    exit 2
    ;;
esac
