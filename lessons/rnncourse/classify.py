"""Lesson 05's classifier, given from lesson 07 on: masked pooling and ``SentimentRNN``.

Lesson 05 asks you to write these; lesson 07 reuses them from here instead of a copy.
Lesson 05's grader runs your answers with this module unavailable, so importing it there is
not an answer. ``SentimentRNN`` adds one option to lesson 05's: ``bidirectional=False``, the
shape of a left-to-right language model's encoder.
"""

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnncourse.text import PAD_ID


def length_mask(H_all: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, T) bool, True at the real steps t < lengths[b] (lengths may live on the CPU)."""
    lengths = lengths.to(H_all.device)
    return torch.arange(H_all.shape[1], device=H_all.device) < lengths[:, None]


def masked_mean(H_all: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, H): the mean of H_all (B, T, H) over the first lengths[b] steps."""
    mask = length_mask(H_all, lengths)  # (B, T)
    total = H_all.masked_fill(~mask[:, :, None], 0).sum(dim=1)  # (B, H)
    return total / lengths.to(H_all.device)[:, None].to(H_all.dtype)


def masked_max(H_all: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, H): the elementwise max of H_all (B, T, H) over the first lengths[b] steps."""
    mask = length_mask(H_all, lengths)  # (B, T)
    return H_all.masked_fill(~mask[:, :, None], float("-inf")).amax(dim=1)


class SentimentRNN(nn.Module):
    """Embedding -> LSTM/GRU -> [masked mean; masked max] -> dropout -> logits (B, 2).

    Args:
        vocab_size: V.  embed_size: e.  num_hiddens: h per direction.
        num_layers: stacked layers.  cell: "lstm" or "gru".
        dropout: on embeddings, pooled features (and between RNN layers).
        packed: run the RNN on pack_padded_sequence(...) instead of the padded tensor.
        bidirectional: read both ways (lesson 05) or left to right only (lesson 07).
    forward(X (B, T) int64, lengths (B,) int64 on any device) -> logits (B, 2).
    Parameter names: ``embedding.*``, ``rnn.*``, ``fc.*`` (``dropout`` holds none).
    """

    def __init__(
        self,
        vocab_size,
        embed_size,
        num_hiddens,
        num_layers=1,
        cell="lstm",
        dropout=0.5,
        packed=False,
        bidirectional=True,
    ):
        super().__init__()
        self.packed = packed
        self.embedding = nn.Embedding(vocab_size, embed_size, padding_idx=PAD_ID)
        self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell](
            embed_size,
            num_hiddens,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        directions = 2 if bidirectional else 1
        self.fc = nn.Linear(2 * directions * num_hiddens, 2)

    def forward(self, X, lengths):
        E = self.dropout(self.embedding(X))  # (B, T, e)
        if self.packed:
            packed = pack_padded_sequence(E, lengths.cpu(), batch_first=True, enforce_sorted=False)
            H_all, _ = self.rnn(packed)
            H_all, _ = pad_packed_sequence(H_all, batch_first=True, total_length=X.shape[1])
        else:
            H_all, _ = self.rnn(E)  # (B, T, H), H = directions * h
        features = torch.cat([masked_mean(H_all, lengths), masked_max(H_all, lengths)], dim=-1)
        return self.fc(self.dropout(features))  # (B, 2)


@torch.no_grad()
def evaluate(model: nn.Module, batches) -> float:
    """Accuracy (a float in [0, 1]) over every example of batches of (X, lengths, y)."""
    device = next(model.parameters()).device
    model.eval()
    correct, total = 0, 0
    for X, lengths, y in batches:
        logits = model(X.to(device), lengths)  # (B, 2)
        correct += (logits.argmax(dim=1).cpu() == y).sum().item()
        total += len(y)
    return correct / total


def layer_groups(model: nn.Module) -> list[list[nn.Parameter]]:
    """The layer groups of fine-tuning, bottom to top: [embedding], [rnn layer 0], ...,
    [rnn layer L-1], [fc] (a layer's backward direction, if any, in the layer's group)."""
    groups = [list(model.embedding.parameters())]
    for layer in range(model.rnn.num_layers):
        suffixes = (f"_l{layer}", f"_l{layer}_reverse")
        groups.append([p for n, p in model.rnn.named_parameters() if n.endswith(suffixes)])
    return groups + [list(model.fc.parameters())]
