"""Data-Juicer operators of DaaR (one per file; file name = registered name)."""

from .daar_diversity_score_filter import DaarDiversityScoreFilter
from .daar_domain_probe_mapper import DaarDomainProbeMapper
from .daar_topk_reward_ray_selector import DaarTopkRewardRaySelector
from .daar_topk_reward_selector import DaarTopkRewardSelector

__all__ = ["DaarDomainProbeMapper", "DaarDiversityScoreFilter", "DaarTopkRewardSelector", "DaarTopkRewardRaySelector"]
