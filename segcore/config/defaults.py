"""The default config tree: the Detectron2 keys that this project uses.

Keys and default values follow Detectron2 (``detectron2/config/defaults.py``), so that an
original MaskFormer / Mask2Former config file merges unchanged. Detection-only keys of
Detectron2 (RPN, ROI heads, anchors, ...) are not part of this tree. Model families add their
own keys with ``add_<family>_config(cfg)``.
"""
from .config import CfgNode as CN

_C = CN()
_C.VERSION = 2

# ---------------------------------------------------------------------------- #
# Model
# ---------------------------------------------------------------------------- #
_C.MODEL = CN()
_C.MODEL.DEVICE = "cuda"  # falls back to "cpu" in default_setup when CUDA is absent
_C.MODEL.META_ARCHITECTURE = "SemanticSegmentor"
# A checkpoint to start from: local path, http(s):// URL or detectron2:// path.
_C.MODEL.WEIGHTS = ""
# Evaluation (--eval-only), the demo and DefaultPredictor refuse a model that did not get every
# weight from MODEL.WEIGHTS (missing or shape-mismatched entries, or no MODEL.WEIGHTS at all):
# True runs it anyway (e.g. to look at an untrained model). Training is not affected.
_C.MODEL.ALLOW_PARTIAL_WEIGHTS = False
# Weight files holding NaN or infinite values are refused when loaded; True loads them (debugging).
_C.MODEL.ALLOW_NON_FINITE_WEIGHTS = False
# Per-channel mean and std (in INPUT.FORMAT order) in 0..255 pixel units.
_C.MODEL.PIXEL_MEAN = [103.530, 116.280, 123.675]
_C.MODEL.PIXEL_STD = [1.0, 1.0, 1.0]
# Attention layers (the transformer decoders, Swin's window attention) run fused kernels
# (F.scaled_dot_product_attention); False runs the original implementations' plain computation,
# equal up to float rounding (segcore.layers.set_fused_attention).
_C.MODEL.FUSED_ATTENTION = True
_C.MODEL.MASK_ON = False
_C.MODEL.LOAD_PROPOSALS = False
_C.MODEL.KEYPOINT_ON = False

_C.MODEL.BACKBONE = CN()
_C.MODEL.BACKBONE.NAME = "build_resnet_backbone"
# Freeze the first N stages (0 = none, 1 = stem, 2 = stem + res2, ...).
_C.MODEL.BACKBONE.FREEZE_AT = 2

_C.MODEL.FPN = CN()
_C.MODEL.FPN.IN_FEATURES = []
_C.MODEL.FPN.OUT_CHANNELS = 256
_C.MODEL.FPN.NORM = ""
_C.MODEL.FPN.FUSE_TYPE = "sum"

# ---------------------------------------------------------------------------- #
# Semantic segmentation head (shared by the per-pixel baselines and mask classification)
# ---------------------------------------------------------------------------- #
_C.MODEL.SEM_SEG_HEAD = CN()
_C.MODEL.SEM_SEG_HEAD.NAME = "SemSegFPNHead"
_C.MODEL.SEM_SEG_HEAD.IN_FEATURES = ["p2", "p3", "p4", "p5"]
_C.MODEL.SEM_SEG_HEAD.IGNORE_VALUE = 255
_C.MODEL.SEM_SEG_HEAD.NUM_CLASSES = 54
_C.MODEL.SEM_SEG_HEAD.CONVS_DIM = 128
_C.MODEL.SEM_SEG_HEAD.COMMON_STRIDE = 4
_C.MODEL.SEM_SEG_HEAD.NORM = "GN"
_C.MODEL.SEM_SEG_HEAD.LOSS_WEIGHT = 1.0
# DeepLab keys (the original projects call add_deeplab_config)
_C.MODEL.SEM_SEG_HEAD.LOSS_TYPE = "hard_pixel_mining"
_C.MODEL.SEM_SEG_HEAD.PROJECT_FEATURES = ["res2"]
_C.MODEL.SEM_SEG_HEAD.PROJECT_CHANNELS = [48]
_C.MODEL.SEM_SEG_HEAD.ASPP_CHANNELS = 256
_C.MODEL.SEM_SEG_HEAD.ASPP_DILATIONS = [6, 12, 18]
_C.MODEL.SEM_SEG_HEAD.ASPP_DROPOUT = 0.1
_C.MODEL.SEM_SEG_HEAD.USE_DEPTHWISE_SEPARABLE_CONV = False

# ---------------------------------------------------------------------------- #
# ResNet
# ---------------------------------------------------------------------------- #
_C.MODEL.RESNETS = CN()
_C.MODEL.RESNETS.DEPTH = 50
_C.MODEL.RESNETS.OUT_FEATURES = ["res4"]
_C.MODEL.RESNETS.NUM_GROUPS = 1
# "FrozenBN", "GN", "SyncBN", "BN", or "" (no norm)
_C.MODEL.RESNETS.NORM = "FrozenBN"
_C.MODEL.RESNETS.WIDTH_PER_GROUP = 64
# True: the stride-2 is in the 1x1 conv (MSRA / Caffe2); False: in the 3x3 conv (torchvision).
_C.MODEL.RESNETS.STRIDE_IN_1X1 = True
_C.MODEL.RESNETS.RES5_DILATION = 1
_C.MODEL.RESNETS.RES4_DILATION = 1
_C.MODEL.RESNETS.RES2_OUT_CHANNELS = 256
_C.MODEL.RESNETS.STEM_OUT_CHANNELS = 64
# DeepLab keys (Detectron2's projects/DeepLab add_deeplab_config, which the original projects call),
# read by build_resnet_deeplab_backbone only: the stem, "deeplab" (three 3x3 convs) or "basic" (one
# 7x7 conv), and the dilation multipliers of the res5 blocks (multi-grid).
_C.MODEL.RESNETS.STEM_TYPE = "deeplab"
_C.MODEL.RESNETS.RES5_MULTI_GRID = [1, 2, 4]
_C.MODEL.RESNETS.DEFORM_ON_PER_STAGE = [False, False, False, False]
_C.MODEL.RESNETS.DEFORM_MODULATED = False
_C.MODEL.RESNETS.DEFORM_NUM_GROUPS = 1

# ---------------------------------------------------------------------------- #
# Input
# ---------------------------------------------------------------------------- #
_C.INPUT = CN()
# Shorter-edge sizes (pixels) for training; one is chosen per image ("choice") or a value in
# [min, max] ("range").
_C.INPUT.MIN_SIZE_TRAIN = (800,)
_C.INPUT.MIN_SIZE_TRAIN_SAMPLING = "choice"
_C.INPUT.MAX_SIZE_TRAIN = 1333
# 0 disables resizing at test time.
_C.INPUT.MIN_SIZE_TEST = 800
_C.INPUT.MAX_SIZE_TEST = 1333
_C.INPUT.RANDOM_FLIP = "horizontal"
_C.INPUT.CROP = CN({"ENABLED": False})
_C.INPUT.CROP.TYPE = "relative_range"
_C.INPUT.CROP.SIZE = [0.9, 0.9]
# Channel order of the model's input image: "RGB", "BGR", "L", ...
_C.INPUT.FORMAT = "BGR"
_C.INPUT.MASK_FORMAT = "polygon"
# The training dataset mapper, by its name in DATASET_MAPPER_REGISTRY; "" is the engine's
# DatasetMapper (Detectron2's default). Model families register theirs (e.g. "mask_former_semantic").
_C.INPUT.DATASET_MAPPER_NAME = ""

# ---------------------------------------------------------------------------- #
# Datasets and loading
# ---------------------------------------------------------------------------- #
_C.DATASETS = CN()
_C.DATASETS.TRAIN = ()
_C.DATASETS.TEST = ()
_C.DATASETS.PROPOSAL_FILES_TRAIN = ()
_C.DATASETS.PROPOSAL_FILES_TEST = ()
_C.DATASETS.PRECOMPUTED_PROPOSAL_TOPK_TRAIN = 2000
_C.DATASETS.PRECOMPUTED_PROPOSAL_TOPK_TEST = 1000

_C.DATALOADER = CN()
_C.DATALOADER.NUM_WORKERS = 4
_C.DATALOADER.ASPECT_RATIO_GROUPING = True
_C.DATALOADER.SAMPLER_TRAIN = "TrainingSampler"
_C.DATALOADER.REPEAT_THRESHOLD = 0.0
_C.DATALOADER.REPEAT_SQRT = True
_C.DATALOADER.FILTER_EMPTY_ANNOTATIONS = True

# ---------------------------------------------------------------------------- #
# Solver
# ---------------------------------------------------------------------------- #
_C.SOLVER = CN()
# "WarmupPolyLR", "WarmupMultiStepLR" or "WarmupCosineLR"
_C.SOLVER.LR_SCHEDULER_NAME = "WarmupMultiStepLR"
# Training length in iterations.
_C.SOLVER.MAX_ITER = 40000
_C.SOLVER.BASE_LR = 0.001
_C.SOLVER.BASE_LR_END = 0.0
_C.SOLVER.MOMENTUM = 0.9
_C.SOLVER.NESTEROV = False
_C.SOLVER.WEIGHT_DECAY = 0.0001
_C.SOLVER.WEIGHT_DECAY_NORM = 0.0
_C.SOLVER.GAMMA = 0.1
_C.SOLVER.STEPS = (30000,)
_C.SOLVER.NUM_DECAYS = 3
_C.SOLVER.WARMUP_FACTOR = 1.0 / 1000
_C.SOLVER.WARMUP_ITERS = 1000
_C.SOLVER.WARMUP_METHOD = "linear"
_C.SOLVER.RESCALE_INTERVAL = False
# Save a checkpoint every this many iterations.
_C.SOLVER.CHECKPOINT_PERIOD = 5000
# Images per batch summed over all processes.
_C.SOLVER.IMS_PER_BATCH = 16
_C.SOLVER.REFERENCE_WORLD_SIZE = 0
_C.SOLVER.BIAS_LR_FACTOR = 1.0
_C.SOLVER.WEIGHT_DECAY_BIAS = None
# The optimizer: "SGD" (Detectron2's) or "ADAMW" (the MaskFormer / Mask2Former configs set it).
_C.SOLVER.OPTIMIZER = "SGD"
# WarmupPolyLR (Detectron2's DeepLab project): lr factor (1 - iter / MAX_ITER) ** POWER
_C.SOLVER.POLY_LR_POWER = 0.9
_C.SOLVER.POLY_LR_CONSTANT_ENDING = 0.0

_C.SOLVER.CLIP_GRADIENTS = CN({"ENABLED": False})
# "value", "norm" (per parameter) or "full_model" (one norm over all parameters)
_C.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = "value"
_C.SOLVER.CLIP_GRADIENTS.CLIP_VALUE = 1.0
_C.SOLVER.CLIP_GRADIENTS.NORM_TYPE = 2.0

_C.SOLVER.AMP = CN({"ENABLED": False})
# The autocast dtype of AMP training (SOLVER.AMP.ENABLED): "float16" (CUDA, with loss scaling) or
# "bfloat16" (CUDA and CPU, no loss scaling needed).
_C.SOLVER.AMP.PRECISION = "float16"
# torch.compile the model's backbone and head for training (DefaultTrainer); the first iterations
# are slow while they compile. State-dict names are unchanged.
_C.SOLVER.COMPILE = False

# ---------------------------------------------------------------------------- #
# Test
# ---------------------------------------------------------------------------- #
_C.TEST = CN()
_C.TEST.EXPECTED_RESULTS = []
# Evaluate every this many iterations during training (0 = only at the end).
_C.TEST.EVAL_PERIOD = 0
_C.TEST.KEYPOINT_OKS_SIGMAS = []
_C.TEST.DETECTIONS_PER_IMAGE = 100
_C.TEST.AUG = CN({"ENABLED": False})
_C.TEST.AUG.MIN_SIZES = (400, 500, 600, 700, 800, 900, 1000, 1100, 1200)
_C.TEST.AUG.MAX_SIZE = 4000
_C.TEST.AUG.FLIP = True
_C.TEST.PRECISE_BN = CN({"ENABLED": False})
_C.TEST.PRECISE_BN.NUM_ITER = 200
# Inference precision of DefaultPredictor, the demo and DefaultTrainer.test (inference_on_dataset):
# "float32", or autocast to "bfloat16" (CPU and CUDA) or "float16" (CUDA only). The parts that need
# float32 stay in it (Mask2Former's deformable-attention pixel decoder, the post-processing).
_C.TEST.PRECISION = "float32"
# torch.compile the model's backbone and head for inference (DefaultPredictor, the demo,
# DefaultTrainer.test); the first images are slow while they compile (and again for new sizes).
_C.TEST.COMPILE = False
# Keep the convolution weights of the model in channels-last memory order for inference
# (DefaultPredictor, the demo): the convolutions then run on NHWC tensors, which oneDNN (CPU) and
# cuDNN (tensor cores) compute without layout conversions. Outputs equal up to float rounding.
_C.TEST.CHANNELS_LAST = True

# ---------------------------------------------------------------------------- #
# Misc
# ---------------------------------------------------------------------------- #
_C.OUTPUT_DIR = "./output"
# Seed for python, numpy and torch; negative = a fresh random seed.
_C.SEED = -1
_C.CUDNN_BENCHMARK = False
# "" (keep torch's default), "highest", "high" or "medium" (torch.set_float32_matmul_precision)
_C.FLOAT32_PRECISION = ""
_C.VIS_PERIOD = 0
_C.GLOBAL = CN()
_C.GLOBAL.HACK = 1.0
