#!/usr/bin/env bash
# Launch training with one YAML config: a single process, or torchrun over the GPUs of one or more nodes.
#
#   scripts/train.sh configs/smoke/lora.yaml                 # one process (CPU, or one GPU)
#   DEBUG=true scripts/train.sh configs/smoke/lora.yaml      # print one batch + trainable parameters, exit
#   CUDA_VISIBLE_DEVICES=0,1,2,3 scripts/train.sh configs/x.yaml
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 scripts/train.sh configs/x.yaml   # on each node, with its NODE_RANK
#   scripts/train.sh configs/x.yaml --dry-run                # print the command, run nothing
#
# Variables (all optional):
#   DEBUG            true, 1 or yes: pass --debug to src.sft (false, 0, no or empty: train); anything else is an error
#   NPROC_PER_NODE   processes per node; default: the devices in CUDA_VISIBLE_DEVICES, else `nvidia-smi -L`, else 1
#   NNODES           number of nodes (default 1)
#   NODE_RANK        this node's rank (default 0)
#   MASTER_ADDR      rendezvous host (default 127.0.0.1)
#   MASTER_PORT      rendezvous port (default 29500)
#   PYTHON           the interpreter (default: the repository's .venv/bin/python when it exists, else python3)
#   TOKENIZERS_PARALLELISM, OMP_NUM_THREADS, TORCH_NCCL_ASYNC_ERROR_HANDLING, TORCH_NCCL_HEARTBEAT_TIMEOUT_SEC,
#   NCCL_DEBUG       defaults false, 1 (torchrun only), 1, 1800, WARN; set them to override. The collective
#                    timeout itself is `training.ddp_timeout` (seconds) in the YAML.
# A relative CONFIG path that does not exist from the current directory is resolved against the repository.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }

config="" dry_run=false
for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    --dry-run) dry_run=true ;;
    -*) echo "train.sh: unknown option $arg (settings belong in the YAML config)" >&2; exit 2 ;;
    *) [[ -z "$config" ]] || { echo "train.sh: one CONFIG only" >&2; exit 2; }; config=$arg ;;
  esac
done
[[ -n "$config" ]] || { usage >&2; exit 2; }
if [[ "$config" != /* && ! -e "$config" && -e "$repo/$config" ]]; then
  config="$repo/$config"
fi
[[ -e "$config" ]] || { echo "train.sh: config not found: $config" >&2; exit 2; }
config="$(cd "$(dirname "$config")" && pwd)/$(basename "$config")"  # the command runs from the repository

# Each numeric variable must be a whole number in its range: bash arithmetic would read `abc` as 0 and `1.5` as an
# error deep inside torchrun.
whole() {  # whole NAME VALUE MIN [MAX]: an empty VALUE is unset (the default applies)
  local name=$1 value=$2 min=$3 max=${4:-}
  [[ -z "$value" ]] && return 0
  local ok=true
  if [[ ! "$value" =~ ^[0-9]+$ ]]; then ok=false
  elif (( 10#$value < min )); then ok=false
  elif [[ -n "$max" ]] && (( 10#$value > max )); then ok=false
  fi
  if ! $ok; then
    if [[ -n "$max" ]]; then range="from $min to $max"; else range="of at least $min"; fi
    echo "train.sh: $name=$value is not a whole number $range" >&2
    exit 2
  fi
}
whole NPROC_PER_NODE "${NPROC_PER_NODE:-}" 1
whole NNODES "${NNODES:-}" 1
whole NODE_RANK "${NODE_RANK:-}" 0 $(( ${NNODES:-1} - 1 ))
whole MASTER_PORT "${MASTER_PORT:-}" 1 65535
whole OMP_NUM_THREADS "${OMP_NUM_THREADS:-}" 1

if [[ -n "${NPROC_PER_NODE:-}" ]]; then
  nproc=$NPROC_PER_NODE
elif [[ -n "${CUDA_VISIBLE_DEVICES:-}" ]]; then
  IFS=',' read -ra devices <<< "$CUDA_VISIBLE_DEVICES"; nproc=${#devices[@]}
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  nproc=$(nvidia-smi -L | grep -c '^GPU')
else
  nproc=1
fi
nnodes=${NNODES:-1}

export TOKENIZERS_PARALLELISM=${TOKENIZERS_PARALLELISM:-false}
export TORCH_NCCL_ASYNC_ERROR_HANDLING=${TORCH_NCCL_ASYNC_ERROR_HANDLING:-1}
export TORCH_NCCL_HEARTBEAT_TIMEOUT_SEC=${TORCH_NCCL_HEARTBEAT_TIMEOUT_SEC:-1800}
export NCCL_DEBUG=${NCCL_DEBUG:-WARN}

source "$repo/scripts/project_python.sh"
python=$(project_python "$repo")
args=(-m src.sft --config "$config")
case "$(echo "${DEBUG:-}" | tr '[:upper:]' '[:lower:]')" in
  true|1|yes) args+=(--debug) ;;
  ''|false|0|no) ;;
  *) echo "train.sh: DEBUG=$DEBUG is not understood; use DEBUG=true (or 1, yes) to debug, false (or 0, no) to train" >&2
     exit 2 ;;
esac
if (( nproc * nnodes == 1 )); then
  cmd=("$python" "${args[@]}")
else
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
  cmd=("$python" -m torch.distributed.run --nnodes "$nnodes" --node_rank "${NODE_RANK:-0}" --nproc_per_node "$nproc"
       --master_addr "${MASTER_ADDR:-127.0.0.1}" --master_port "${MASTER_PORT:-29500}" "${args[@]}")
fi

echo "+ cd $repo && ${cmd[*]}" >&2
$dry_run && exit 0
cd "$repo"
exec "${cmd[@]}"
