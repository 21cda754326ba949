using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Adaptation;

/// <summary>The genuinely pre-trained small BERT in ../shared/models (BertForMaskedLM layout, no pooler), and held-out text for it.</summary>
public static class BertTinyMlm
{
    public static string Path => System.IO.Path.Combine(SharedData.Root, "models", "bert-tiny-mlm-en");

    /// <summary>SMS messages, rows [skip, skip + take) of the file: a domain the model was not pre-trained on.</summary>
    public static List<string> Sms(int skip, int take) => TextData.SmsSpam(skip, take).Select(r => r.Text).ToList();

    /// <summary>SST-2 dev sentences: the model's pre-training domain (it saw SST-2 train, not dev).</summary>
    public static List<string> Sst2Dev(int take) => TextData.Sst2("dev.tsv", 0, take).Select(r => r.Text).ToList();
}
