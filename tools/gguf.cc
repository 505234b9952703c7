#include "tools/gguf.h"

#include <cstring>
#include <fstream>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/dtype.h"
#include "core/gzip_file.h"
#include "core/model_config.h"
#include "core/safetensors.h"
#include "nlohmann/json.hpp"

namespace moe::gguf {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian uint32
constexpr uint64_t kAlignment = 32;

uint64_t AlignUp(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

int64_t TypeSize(TensorType t) { return t == TensorType::kF32 ? 4 : 2; }

class Writer {
 public:
  void U32(uint32_t v) { Raw(&v, 4); }
  void I32(int32_t v) { Raw(&v, 4); }
  void U64(uint64_t v) { Raw(&v, 8); }
  void F32(float v) { Raw(&v, 4); }
  void Str(const std::string& s) {
    U64(s.size());
    out_.append(s);
  }
  void Raw(const void* p, size_t n) { out_.append(static_cast<const char*>(p), n); }
  void Pad(uint64_t a) { out_.append(AlignUp(out_.size(), a) - out_.size(), '\0'); }
  std::string& bytes() { return out_; }

  void ValueOf(const Value& v) {
    if (const auto* x = std::get_if<uint32_t>(&v)) {
      U32(static_cast<uint32_t>(ValueType::kU32));
      U32(*x);
    } else if (const auto* x = std::get_if<int32_t>(&v)) {
      U32(static_cast<uint32_t>(ValueType::kI32));
      I32(*x);
    } else if (const auto* x = std::get_if<float>(&v)) {
      U32(static_cast<uint32_t>(ValueType::kF32));
      F32(*x);
    } else if (const auto* x = std::get_if<bool>(&v)) {
      U32(static_cast<uint32_t>(ValueType::kBool));
      const uint8_t b = *x ? 1 : 0;
      Raw(&b, 1);
    } else if (const auto* x = std::get_if<std::string>(&v)) {
      U32(static_cast<uint32_t>(ValueType::kString));
      Str(*x);
    } else if (const auto* x = std::get_if<uint64_t>(&v)) {
      U32(static_cast<uint32_t>(ValueType::kU64));
      U64(*x);
    } else if (const auto* x = std::get_if<std::vector<std::string>>(&v)) {
      U32(static_cast<uint32_t>(ValueType::kArray));
      U32(static_cast<uint32_t>(ValueType::kString));
      U64(x->size());
      for (const std::string& s : *x) Str(s);
    } else if (const auto* x = std::get_if<std::vector<int32_t>>(&v)) {
      U32(static_cast<uint32_t>(ValueType::kArray));
      U32(static_cast<uint32_t>(ValueType::kI32));
      U64(x->size());
      for (int32_t i : *x) I32(i);
    } else if (const auto* x = std::get_if<std::vector<float>>(&v)) {
      U32(static_cast<uint32_t>(ValueType::kArray));
      U32(static_cast<uint32_t>(ValueType::kF32));
      U64(x->size());
      for (float f : *x) F32(f);
    }
  }

 private:
  std::string out_;
};

class Reader {
 public:
  Reader(const std::string& bytes, const ReadLimits& limits) : b_(bytes), limits_(limits) {}
  size_t pos() const { return pos_; }
  absl::Status Need(size_t n, const char* what) {
    if (b_.size() - pos_ < n) return absl::InvalidArgumentError(absl::StrCat("gguf: truncated in ", what, " at byte ", pos_));
    return absl::OkStatus();
  }
  template <typename T>
  absl::StatusOr<T> Scalar(const char* what) {
    if (absl::Status st = Need(sizeof(T), what); !st.ok()) return st;
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  absl::StatusOr<std::string> Str(const char* what) {
    absl::StatusOr<uint64_t> n = Scalar<uint64_t>(what);
    if (!n.ok()) return n.status();
    if (*n > limits_.max_string) return absl::InvalidArgumentError(absl::StrCat("gguf: ", what, ": string of ", *n, " bytes"));
    if (absl::Status st = Need(*n, what); !st.ok()) return st;
    std::string s = b_.substr(pos_, *n);
    pos_ += *n;
    return s;
  }
  absl::StatusOr<Value> ValueOf(const std::string& key) {
    absl::StatusOr<uint32_t> t = Scalar<uint32_t>("value type");
    if (!t.ok()) return t.status();
    auto scalar = [&](uint32_t type) -> absl::StatusOr<Value> {
      switch (static_cast<ValueType>(type)) {
        case ValueType::kU32: {
          auto v = Scalar<uint32_t>("u32");
          if (!v.ok()) return v.status();
          return Value(*v);
        }
        case ValueType::kI32: {
          auto v = Scalar<int32_t>("i32");
          if (!v.ok()) return v.status();
          return Value(*v);
        }
        case ValueType::kF32: {
          auto v = Scalar<float>("f32");
          if (!v.ok()) return v.status();
          return Value(*v);
        }
        case ValueType::kBool: {
          auto v = Scalar<uint8_t>("bool");
          if (!v.ok()) return v.status();
          return Value(*v != 0);
        }
        case ValueType::kString: {
          auto v = Str("string");
          if (!v.ok()) return v.status();
          return Value(*v);
        }
        case ValueType::kU64: {
          auto v = Scalar<uint64_t>("u64");
          if (!v.ok()) return v.status();
          return Value(*v);
        }
        default:
          return absl::UnimplementedError(absl::StrCat("gguf: metadata ", key, ": value type ", type, " is not read"));
      }
    };
    if (static_cast<ValueType>(*t) != ValueType::kArray) return scalar(*t);
    absl::StatusOr<uint32_t> et = Scalar<uint32_t>("array type");
    if (!et.ok()) return et.status();
    absl::StatusOr<uint64_t> n = Scalar<uint64_t>("array length");
    if (!n.ok()) return n.status();
    if (*n > limits_.max_array) return absl::InvalidArgumentError(absl::StrCat("gguf: metadata ", key, ": array of ", *n));
    std::vector<std::string> strings;
    std::vector<int32_t> ints;
    std::vector<float> floats;
    for (uint64_t i = 0; i < *n; ++i) {
      absl::StatusOr<Value> v = scalar(*et);
      if (!v.ok()) return v.status();
      if (auto* s = std::get_if<std::string>(&*v)) {
        strings.push_back(std::move(*s));
      } else if (auto* x = std::get_if<int32_t>(&*v)) {
        ints.push_back(*x);
      } else if (auto* f = std::get_if<float>(&*v)) {
        floats.push_back(*f);
      } else {
        return absl::UnimplementedError(absl::StrCat("gguf: metadata ", key, ": arrays of type ", *et, " are not read"));
      }
    }
    if (static_cast<ValueType>(*et) == ValueType::kString) return Value(std::move(strings));
    if (static_cast<ValueType>(*et) == ValueType::kF32) return Value(std::move(floats));
    return Value(std::move(ints));
  }
  const std::string& bytes() const { return b_; }

 private:
  const std::string& b_;
  const ReadLimits limits_;
  size_t pos_ = 0;
};

}  // namespace

const Value* File::Find(const std::string& key) const {
  for (const auto& [k, v] : metadata) {
    if (k == key) return &v;
  }
  return nullptr;
}

const Tensor* File::FindTensor(const std::string& name) const {
  for (const Tensor& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

absl::Status Write(const File& file, const std::string& path) {
  Writer w;
  w.U32(kMagic);
  w.U32(file.version);
  w.U64(file.tensors.size());
  w.U64(file.metadata.size());
  for (const auto& [key, value] : file.metadata) {
    w.Str(key);
    w.ValueOf(value);
  }
  uint64_t offset = 0;
  for (const Tensor& t : file.tensors) {
    uint64_t n = 1;
    for (uint64_t d : t.dims) n *= d;
    if (n * static_cast<uint64_t>(TypeSize(t.type)) != t.data.size()) {
      return absl::InternalError(absl::StrCat("gguf: tensor ", t.name, ": ", t.data.size(), " bytes for its shape"));
    }
    w.Str(t.name);
    w.U32(static_cast<uint32_t>(t.dims.size()));
    for (uint64_t d : t.dims) w.U64(d);
    w.U32(static_cast<uint32_t>(t.type));
    w.U64(offset);
    offset = AlignUp(offset + t.data.size(), kAlignment);
  }
  w.Pad(kAlignment);
  const size_t data_start = w.bytes().size();
  for (const Tensor& t : file.tensors) {
    w.Raw(t.data.data(), t.data.size());
    w.bytes().append(AlignUp(w.bytes().size() - data_start, kAlignment) - (w.bytes().size() - data_start), '\0');
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::PermissionDeniedError(absl::StrCat(path, ": cannot be written"));
  out.write(w.bytes().data(), static_cast<std::streamsize>(w.bytes().size()));
  out.close();
  if (!out) return absl::DataLossError(absl::StrCat(path, ": write failed"));
  return absl::OkStatus();
}

absl::StatusOr<File> Read(const std::string& path, const ReadLimits& limits) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot be opened"));
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Reader r(bytes, limits);
  File f;
  auto magic = r.Scalar<uint32_t>("magic");
  if (!magic.ok()) return magic.status();
  if (*magic != kMagic) return absl::InvalidArgumentError(absl::StrCat(path, ": not a GGUF file"));
  auto version = r.Scalar<uint32_t>("version");
  if (!version.ok()) return version.status();
  if (*version != 3) return absl::UnimplementedError(absl::StrCat(path, ": GGUF version ", *version, " (3 is read)"));
  auto n_tensors = r.Scalar<uint64_t>("tensor count");
  auto n_kv = r.Scalar<uint64_t>("metadata count");
  if (!n_tensors.ok() || !n_kv.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": truncated header"));
  if (*n_tensors > limits.max_tensors) return absl::InvalidArgumentError(absl::StrCat(path, ": ", *n_tensors, " tensors"));
  if (*n_kv > limits.max_metadata) return absl::InvalidArgumentError(absl::StrCat(path, ": ", *n_kv, " metadata entries"));
  for (uint64_t i = 0; i < *n_kv; ++i) {
    auto key = r.Str("metadata key");
    if (!key.ok()) return key.status();
    auto value = r.ValueOf(*key);
    if (!value.ok()) return value.status();
    f.metadata.emplace_back(std::move(*key), std::move(*value));
  }
  std::vector<uint64_t> offsets;
  for (uint64_t i = 0; i < *n_tensors; ++i) {
    Tensor t;
    auto name = r.Str("tensor name");
    if (!name.ok()) return name.status();
    t.name = std::move(*name);
    auto nd = r.Scalar<uint32_t>("tensor dims");
    if (!nd.ok()) return nd.status();
    if (*nd == 0 || *nd > 4) return absl::InvalidArgumentError(absl::StrCat(path, ": tensor ", t.name, ": ", *nd, " dims"));
    for (uint32_t d = 0; d < *nd; ++d) {
      auto dim = r.Scalar<uint64_t>("tensor dim");
      if (!dim.ok()) return dim.status();
      if (*dim == 0 || *dim > (uint64_t{1} << 40)) return absl::InvalidArgumentError(absl::StrCat(path, ": tensor ", t.name, ": dim ", *dim));
      t.dims.push_back(*dim);
    }
    auto type = r.Scalar<uint32_t>("tensor type");
    auto offset = r.Scalar<uint64_t>("tensor offset");
    if (!type.ok() || !offset.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": truncated tensor info"));
    if (*type != 0 && *type != 1 && *type != 30) {
      return absl::UnimplementedError(absl::StrCat(path, ": tensor ", t.name, ": ggml type ", *type, " is not read"));
    }
    t.type = static_cast<TensorType>(*type);
    offsets.push_back(*offset);
    f.tensors.push_back(std::move(t));
  }
  uint64_t alignment = kAlignment;
  if (const Value* a = f.Find("general.alignment"); a != nullptr && std::holds_alternative<uint32_t>(*a)) {
    alignment = std::get<uint32_t>(*a);
    if (alignment == 0 || alignment > 4096) return absl::InvalidArgumentError(absl::StrCat(path, ": alignment ", alignment));
  }
  const uint64_t data_start = AlignUp(r.pos(), alignment);
  for (size_t i = 0; i < f.tensors.size(); ++i) {
    Tensor& t = f.tensors[i];
    uint64_t n = static_cast<uint64_t>(TypeSize(t.type));
    for (uint64_t d : t.dims) n *= d;
    if (offsets[i] % alignment != 0 || data_start + offsets[i] > bytes.size() || bytes.size() - data_start - offsets[i] < n) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": tensor ", t.name, ": data out of the file or misaligned"));
    }
    t.data = bytes.substr(data_start + offsets[i], n);
  }
  f.version = *version;
  return f;
}

int64_t RotaryRowSource(int64_t new_row, int64_t head_dim) {
  const int64_t h = new_row / head_dim, r = new_row % head_dim;
  const int64_t i = r / 2, j = r % 2;
  return h * head_dim + j * (head_dim / 2) + i;
}

namespace {

// The bf16 tensor `name` as raw bytes (its shape in `shape`), checked.
absl::StatusOr<std::string> Bf16Bytes(const SafetensorsFile& st, const std::string& name,
                                      const std::vector<int64_t>& shape) {
  absl::StatusOr<TensorView> t = st.Get(name);
  if (!t.ok()) return t.status();
  if (t->dtype() != DType::kBF16) {
    return absl::UnimplementedError(
        absl::StrCat(name, ": ", std::string(DTypeName(t->dtype())), " (bf16 checkpoints are exported)"));
  }
  if (t->shape() != shape) return absl::InvalidArgumentError(absl::StrCat(name, ": shape does not match config.json"));
  return std::string(reinterpret_cast<const char*>(t->data), t->nbytes());
}

// A norm weight as f32.
absl::StatusOr<std::string> NormF32(const SafetensorsFile& st, const std::string& name, int64_t n) {
  absl::StatusOr<std::string> b = Bf16Bytes(st, name, {n});
  if (!b.ok()) return b.status();
  std::string out(static_cast<size_t>(n) * 4, '\0');
  for (int64_t i = 0; i < n; ++i) {
    uint16_t v;
    std::memcpy(&v, b->data() + 2 * i, 2);
    const float f = Bf16ToF32(v);
    std::memcpy(out.data() + 4 * i, &f, 4);
  }
  return out;
}

// Rows of a [rows, cols] bf16 matrix reordered for llama.cpp's rotary layout.
std::string RotaryRows(const std::string& m, int64_t rows, int64_t cols, int64_t head_dim) {
  std::string out(m.size(), '\0');
  const size_t row_bytes = static_cast<size_t>(cols) * 2;
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(out.data() + r * row_bytes, m.data() + RotaryRowSource(r, head_dim) * row_bytes, row_bytes);
  }
  return out;
}

}  // namespace

absl::Status ExportGguf(const std::string& model_dir, const std::string& out_path, bool f32_weights) {
  absl::StatusOr<ModelConfig> cfg_or = LoadModelConfig(model_dir);
  if (!cfg_or.ok()) return cfg_or.status();
  const ModelConfig& c = *cfg_or;
  if (c.model_type != "mixtral") {
    return absl::UnimplementedError(
        absl::StrCat("export-gguf: model_type ", c.model_type, " (the Mixtral layout is exported)"));
  }
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> st_or = SafetensorsFile::Open(model_dir + "/model.safetensors");
  if (!st_or.ok()) return st_or.status();
  const SafetensorsFile& st = **st_or;
  absl::StatusOr<std::string> tok_text = ReadMaybeGzippedFile(model_dir + "/tokenizer.json");
  if (!tok_text.ok()) return tok_text.status();
  const nlohmann::json tok = nlohmann::json::parse(*tok_text, nullptr, false);
  if (tok.is_discarded() || !tok.contains("model") || !tok["model"].is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(model_dir, "/tokenizer.json: not a tokenizer.json"));
  }
  const nlohmann::json& tm = tok["model"];
  if (tm.value("type", "") != "BPE" || !tok.contains("decoder") || tok["decoder"].value("type", "") != "ByteLevel") {
    return absl::UnimplementedError("export-gguf: the tokenizer is not byte-level BPE (exported: byte-level BPE)");
  }

  const int64_t H = c.hidden_size, L = c.num_hidden_layers, E = c.num_experts, F = c.intermediate_size;
  const int64_t V = c.vocab_size, hd = c.head_dim, nh = c.num_attention_heads, nkv = c.num_key_value_heads;
  File f;
  auto meta = [&](const std::string& k, Value v) { f.metadata.emplace_back(k, std::move(v)); };
  meta("general.architecture", std::string("llama"));
  meta("general.name", std::string("moe export of ") + model_dir);
  meta("general.alignment", static_cast<uint32_t>(kAlignment));
  meta("general.file_type", static_cast<uint32_t>(f32_weights ? 0 : 32));  // ALL_F32, MOSTLY_BF16
  meta("llama.vocab_size", static_cast<uint32_t>(V));
  meta("llama.context_length", static_cast<uint32_t>(c.max_position_embeddings));
  meta("llama.embedding_length", static_cast<uint32_t>(H));
  meta("llama.block_count", static_cast<uint32_t>(L));
  meta("llama.feed_forward_length", static_cast<uint32_t>(F));
  meta("llama.attention.head_count", static_cast<uint32_t>(nh));
  meta("llama.attention.head_count_kv", static_cast<uint32_t>(nkv));
  meta("llama.attention.key_length", static_cast<uint32_t>(hd));
  meta("llama.attention.value_length", static_cast<uint32_t>(hd));
  meta("llama.rope.dimension_count", static_cast<uint32_t>(hd));
  meta("llama.rope.freq_base", static_cast<float>(c.rope_theta));
  meta("llama.attention.layer_norm_rms_epsilon", static_cast<float>(c.rms_norm_eps));
  meta("llama.expert_count", static_cast<uint32_t>(E));
  meta("llama.expert_used_count", static_cast<uint32_t>(c.num_experts_per_tok));

  // Tokenizer: every id up to vocab_size, added tokens as control tokens,
  // ids the tokenizer does not name as unused padding.
  std::vector<std::string> tokens(static_cast<size_t>(V));
  std::vector<int32_t> types(static_cast<size_t>(V), 5);  // 5: unused
  for (int64_t i = 0; i < V; ++i) tokens[static_cast<size_t>(i)] = absl::StrCat("[PAD", i, "]");
  if (!tm.contains("vocab") || !tm["vocab"].is_object()) return absl::InvalidArgumentError("tokenizer.json: no model.vocab");
  for (const auto& [text, id] : tm["vocab"].items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= V) {
      return absl::InvalidArgumentError(absl::StrCat("tokenizer.json: token ", text, ": id outside [0, ", V, ")"));
    }
    tokens[id.get<size_t>()] = text;
    types[id.get<size_t>()] = 1;  // normal
  }
  if (tok.contains("added_tokens") && tok["added_tokens"].is_array()) {
    for (const auto& a : tok["added_tokens"]) {
      const int64_t id = a.value("id", int64_t{-1});
      if (id < 0 || id >= V) return absl::InvalidArgumentError(absl::StrCat("tokenizer.json: added token id ", id));
      tokens[static_cast<size_t>(id)] = a.value("content", "");
      types[static_cast<size_t>(id)] = a.value("special", false) ? 3 : 4;  // control, user-defined
    }
  }
  std::vector<std::string> merges;
  if (tm.contains("merges") && tm["merges"].is_array()) {
    for (const auto& m : tm["merges"]) {
      if (m.is_string()) {
        merges.push_back(m.get<std::string>());
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
      } else {
        return absl::InvalidArgumentError("tokenizer.json: a merge is neither \"a b\" nor [a, b]");
      }
    }
  }
  // The pre-tokenizer: Qwen2's split (one digit at a time) or Llama 3's.
  const std::string pre_text = tok.contains("pre_tokenizer") ? tok["pre_tokenizer"].dump() : "";
  const std::string pre = pre_text.find("\\\\p{N}{1,3}") != std::string::npos ? "llama-bpe"
                          : pre_text.find("\\\\p{N}|") != std::string::npos ? "qwen2"
                                                                              : "default";
  meta("tokenizer.ggml.model", std::string("gpt2"));
  meta("tokenizer.ggml.pre", pre);
  meta("tokenizer.ggml.tokens", std::move(tokens));
  meta("tokenizer.ggml.token_type", std::move(types));
  meta("tokenizer.ggml.merges", std::move(merges));
  if (!c.eos_token_ids.empty()) meta("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(c.eos_token_ids[0]));
  if (c.bos_token_id.has_value()) meta("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(*c.bos_token_id));
  meta("tokenizer.ggml.add_bos_token", false);

  auto add = [&](const std::string& name, std::vector<uint64_t> dims, TensorType type, std::string data) {
    if (type == TensorType::kBF16 && f32_weights) {
      std::string wide(data.size() * 2, '\0');
      for (size_t i = 0; i < data.size() / 2; ++i) {
        uint16_t v;
        std::memcpy(&v, data.data() + 2 * i, 2);
        const float x = Bf16ToF32(v);
        std::memcpy(wide.data() + 4 * i, &x, 4);
      }
      data = std::move(wide);
      type = TensorType::kF32;
    }
    f.tensors.push_back(Tensor{name, std::move(dims), type, std::move(data)});
  };
  absl::StatusOr<std::string> b = Bf16Bytes(st, "model.embed_tokens.weight", {V, H});
  if (!b.ok()) return b.status();
  add("token_embd.weight", {static_cast<uint64_t>(H), static_cast<uint64_t>(V)}, TensorType::kBF16, std::move(*b));
  for (int64_t l = 0; l < L; ++l) {
    const std::string p = absl::StrCat("model.layers.", l, ".");
    const std::string g = absl::StrCat("blk.", l, ".");
    absl::StatusOr<std::string> n = NormF32(st, p + "input_layernorm.weight", H);
    if (!n.ok()) return n.status();
    add(g + "attn_norm.weight", {static_cast<uint64_t>(H)}, TensorType::kF32, std::move(*n));
    struct Proj {
      const char* hf;
      const char* gg;
      int64_t rows;
      bool rotary;
    };
    for (const Proj& pr : {Proj{"q_proj", "attn_q", nh * hd, true}, Proj{"k_proj", "attn_k", nkv * hd, true},
                           Proj{"v_proj", "attn_v", nkv * hd, false}}) {
      b = Bf16Bytes(st, p + "self_attn." + pr.hf + ".weight", {pr.rows, H});
      if (!b.ok()) return b.status();
      add(g + pr.gg + ".weight", {static_cast<uint64_t>(H), static_cast<uint64_t>(pr.rows)}, TensorType::kBF16,
          pr.rotary ? RotaryRows(*b, pr.rows, H, hd) : std::move(*b));
    }
    b = Bf16Bytes(st, p + "self_attn.o_proj.weight", {H, nh * hd});
    if (!b.ok()) return b.status();
    add(g + "attn_output.weight", {static_cast<uint64_t>(nh * hd), static_cast<uint64_t>(H)}, TensorType::kBF16,
        std::move(*b));
    n = NormF32(st, p + "post_attention_layernorm.weight", H);
    if (!n.ok()) return n.status();
    add(g + "ffn_norm.weight", {static_cast<uint64_t>(H)}, TensorType::kF32, std::move(*n));
    b = Bf16Bytes(st, p + "block_sparse_moe.gate.weight", {E, H});
    if (!b.ok()) return b.status();
    add(g + "ffn_gate_inp.weight", {static_cast<uint64_t>(H), static_cast<uint64_t>(E)}, TensorType::kBF16,
        std::move(*b));
    // Experts stacked: w1 (gate) and w3 (up) are [F, H] each, w2 (down) [H, F].
    struct Stack {
      const char* hf;
      const char* gg;
      int64_t rows, cols;
    };
    for (const Stack& s : {Stack{"w1", "ffn_gate_exps", F, H}, Stack{"w3", "ffn_up_exps", F, H},
                           Stack{"w2", "ffn_down_exps", H, F}}) {
      std::string all;
      all.reserve(static_cast<size_t>(E * s.rows * s.cols * 2));
      for (int64_t e = 0; e < E; ++e) {
        b = Bf16Bytes(st, absl::StrCat(p, "block_sparse_moe.experts.", e, ".", s.hf, ".weight"), {s.rows, s.cols});
        if (!b.ok()) return b.status();
        all += *b;
      }
      add(g + s.gg + ".weight",
          {static_cast<uint64_t>(s.cols), static_cast<uint64_t>(s.rows), static_cast<uint64_t>(E)},
          TensorType::kBF16, std::move(all));
    }
  }
  absl::StatusOr<std::string> on = NormF32(st, "model.norm.weight", H);
  if (!on.ok()) return on.status();
  add("output_norm.weight", {static_cast<uint64_t>(H)}, TensorType::kF32, std::move(*on));
  b = Bf16Bytes(st, c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight", {V, H});
  if (!b.ok()) return b.status();
  add("output.weight", {static_cast<uint64_t>(H), static_cast<uint64_t>(V)}, TensorType::kBF16, std::move(*b));
  return Write(f, out_path);
}

}  // namespace moe::gguf
