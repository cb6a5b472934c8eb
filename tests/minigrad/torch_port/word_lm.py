"""A word-language-model training script in the style of pytorch/examples/word_language_model, written
for PyTorch and run on minigrad with only the imports changed (and nn.LSTM -> rnn.LSTM: minigrad.nn
holds no recurrent layers, rnn does). tests/minigrad/test_torch_port.py runs it."""

import math

import minigrad as torch  # was: import torch
import minigrad.nn as nn  # was: import torch.nn as nn
import rnn  # was: (nn.LSTM lives in torch.nn)


class RNNModel(nn.Module):
    def __init__(self, ntoken, ninp, nhid, nlayers, dropout=0.0):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = rnn.LSTM(ninp, nhid, nlayers, dropout=dropout)     # was: nn.LSTM(...)
        self.decoder = nn.Linear(nhid, ntoken)
        self.nhid, self.nlayers = nhid, nlayers
        initrange = 0.1
        nn.init.uniform_(self.encoder.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -initrange, initrange)

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        decoded = self.decoder(output).view(-1, self.decoder.out_features)
        return nn.functional.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        return (weight.new_zeros(self.nlayers, bsz, self.nhid),
                weight.new_zeros(self.nlayers, bsz, self.nhid))


def batchify(data, bsz):
    nbatch = data.size(0) // bsz
    data = data.narrow(0, 0, nbatch * bsz)
    return data.view(bsz, -1).t().contiguous()


def repackage_hidden(h):
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


def get_batch(source, i, bptt):
    seq_len = min(bptt, len(source) - 1 - i)
    data = source[i:i + seq_len]
    target = source[i + 1:i + 1 + seq_len].view(-1)
    return data, target


def main(epochs=4, lr=20.0, clip=0.25, bptt=8, seed=0, nlayers=1):
    torch.manual_seed(seed)
    corpus = [int(c) for c in "0123401234012340123401234" * 12]     # a periodic "text"
    train_data = batchify(torch.tensor(corpus, dtype=torch.long), 4)
    ntokens = 5
    model = RNNModel(ntokens, 16, 32, nlayers)
    criterion = nn.NLLLoss()
    losses = []
    for epoch in range(epochs):
        model.train()
        total_loss = 0.0
        hidden = model.init_hidden(4)
        batches = 0
        for i in range(0, train_data.size(0) - 1, bptt):
            data, targets = get_batch(train_data, i, bptt)
            model.zero_grad()
            hidden = repackage_hidden(hidden)
            output, hidden = model(data, hidden)
            loss = criterion(output, targets)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            with torch.no_grad():                                     # was: p.data.add_(p.grad, alpha=-lr)
                for p in model.parameters():
                    p.add_(p.grad, alpha=-lr)
            total_loss += loss.item()
            batches += 1
        losses.append(total_loss / batches)
        print(f"| epoch {epoch:3d} | loss {losses[-1]:5.2f} | ppl {math.exp(losses[-1]):8.2f}")
    return losses


if __name__ == "__main__":
    main()
