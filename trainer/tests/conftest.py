"""pytest setup: small thread count so the trainer's tests are quick and do not starve other jobs."""
import torch

torch.set_num_threads(1)
