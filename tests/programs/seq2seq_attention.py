"""Follows the PyTorch tutorial "NLP From Scratch: Translation with a Sequence to Sequence Network and Attention":
an `EncoderRNN` (Embedding + GRU, batch_first), a `BahdanauAttention` (`Wa`, `Ua`, `Va`, `scores.squeeze(2).unsqueeze(1)`,
`F.softmax(scores, dim=-1)`, `torch.bmm(weights, keys)`), an `AttnDecoderRNN` decoding step by step with teacher
forcing and `topk(1)` + `squeeze(-1).detach()` otherwise, `torch.cat` of step outputs, log_softmax + NLLLoss on
`view(-1, ...)`, and two Adam optimizers."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import optim

SOS_token, MAX_LENGTH, vocab = 0, 6, 8


class EncoderRNN(nn.Module):
    def __init__(self, input_size, hidden_size, dropout_p=0.1):
        super(EncoderRNN, self).__init__()
        self.embedding = nn.Embedding(input_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True)
        self.dropout = nn.Dropout(dropout_p)

    def forward(self, input):
        embedded = self.dropout(self.embedding(input))
        return self.gru(embedded)


class BahdanauAttention(nn.Module):
    def __init__(self, hidden_size):
        super(BahdanauAttention, self).__init__()
        self.Wa = nn.Linear(hidden_size, hidden_size)
        self.Ua = nn.Linear(hidden_size, hidden_size)
        self.Va = nn.Linear(hidden_size, 1)

    def forward(self, query, keys):
        scores = self.Va(torch.tanh(self.Wa(query) + self.Ua(keys)))
        scores = scores.squeeze(2).unsqueeze(1)
        weights = F.softmax(scores, dim=-1)
        return torch.bmm(weights, keys), weights


class AttnDecoderRNN(nn.Module):
    def __init__(self, hidden_size, output_size, dropout_p=0.1):
        super(AttnDecoderRNN, self).__init__()
        self.embedding = nn.Embedding(output_size, hidden_size)
        self.attention = BahdanauAttention(hidden_size)
        self.gru = nn.GRU(2 * hidden_size, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, output_size)
        self.dropout = nn.Dropout(dropout_p)

    def forward(self, encoder_outputs, encoder_hidden, target_tensor=None):
        batch_size = encoder_outputs.size(0)
        decoder_input = torch.empty(batch_size, 1, dtype=torch.long).fill_(SOS_token)
        decoder_hidden = encoder_hidden
        decoder_outputs, attentions = [], []
        for i in range(MAX_LENGTH):
            decoder_output, decoder_hidden, attn_weights = self.forward_step(decoder_input, decoder_hidden,
                                                                             encoder_outputs)
            decoder_outputs.append(decoder_output)
            attentions.append(attn_weights)
            if target_tensor is not None:
                decoder_input = target_tensor[:, i].unsqueeze(1)
            else:
                _, topi = decoder_output.topk(1)
                decoder_input = topi.squeeze(-1).detach()
        decoder_outputs = F.log_softmax(torch.cat(decoder_outputs, dim=1), dim=-1)
        return decoder_outputs, decoder_hidden, torch.cat(attentions, dim=1)

    def forward_step(self, input, hidden, encoder_outputs):
        embedded = self.dropout(self.embedding(input))
        query = hidden.permute(1, 0, 2)
        context, attn_weights = self.attention(query, encoder_outputs)
        output, hidden = self.gru(torch.cat((embedded, context), dim=2), hidden)
        return self.out(output), hidden, attn_weights


torch.manual_seed(0)
source = torch.randint(1, vocab, (32, MAX_LENGTH))
target = source.flip(1)  # learn to reverse
encoder, decoder = EncoderRNN(vocab, 24), AttnDecoderRNN(24, vocab)
encoder_optimizer = optim.Adam(encoder.parameters(), lr=0.01)
decoder_optimizer = optim.Adam(decoder.parameters(), lr=0.01)
criterion = nn.NLLLoss()
losses = []
for epoch in range(25):
    encoder_optimizer.zero_grad()
    decoder_optimizer.zero_grad()
    encoder_outputs, encoder_hidden = encoder(source)
    decoder_outputs, _, _ = decoder(encoder_outputs, encoder_hidden, target)
    loss = criterion(decoder_outputs.view(-1, decoder_outputs.size(-1)), target.view(-1))
    loss.backward()
    encoder_optimizer.step()
    decoder_optimizer.step()
    losses.append(loss.item())
encoder.eval()
decoder.eval()
with torch.no_grad():
    outputs, _, attentions = decoder(*encoder(source[:2]))
    _, decoded_ids = outputs.topk(1)
RESULT = {"losses": [losses[0], losses[-1]], "shapes": {"attn": list(attentions.shape), "ids": list(decoded_ids.shape)},
          "dtypes": {"ids": str(decoded_ids.dtype).split(".")[-1]}}
