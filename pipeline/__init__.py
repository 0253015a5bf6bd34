"""imbalance-lab: what fixes for class imbalance do, measured and tracked."""

import os

# MLflow's usage telemetry runs a thread that, on a machine without internet, gives up and takes
# its session variable out of the environment while request threads are reading the environment
# (requests looks for proxies in it on every call): a KeyError in log_batch, seen once in 200
# jobs of 8 joblib workers. Off unless the user asks for it (MLFLOW_DISABLE_TELEMETRY=false).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
