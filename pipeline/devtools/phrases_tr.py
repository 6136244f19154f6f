"""Turkish chat phrases for the demo generator: a staff member asking the company's HR assistant."""

# Turkish spells with the dotless i (U+0131), which RUF001 takes for a look-alike of i.
# ruff: noqa: RUF001

from __future__ import annotations

from pipeline.devtools.phrasebook import Phrasebook

__all__ = ["PHRASEBOOK"]

PHRASEBOOK = Phrasebook(
    language="tr",
    labels=("turkish", "turkish", "Turkish"),
    greetings=("Merhaba", "Selam", "Günaydın", "İyi günler", "Merhaba, bir sorum var"),
    greeting_replies=(
        "Merhaba! Size nasıl yardımcı olabilirim?",
        "Selam! Sizin için ne yapabilirim?",
    ),
    topics={
        "SCHEDULE_HOURS": (
            (
                "Bir sonraki vardiyam ne zaman?",
                "Çalışma programınızı personel uygulamasında 'Programım' bölümünde bulabilirsiniz. "
                "Önümüzdeki iki haftanın programı her perşembe yayınlanır.",
            ),
            (
                "Cumartesi vardiyamı bir iş arkadaşımla değiştirebilir miyim?",
                "Evet, uygulamada değiştirebilirsiniz:\n1. 'Programım' bölümünü açın\n"
                "2. Vardiyaya dokunun ve 'Değiştir' seçin\n3. Takım lideriniz onaylar",
            ),
        ),
        "LEAVE_VACATION": (
            (
                "Kaç gün yıllık iznim kaldı?",
                "Kalan izin günlerinizi uygulamada 'İzin' bölümünde görebilirsiniz.",
            ),
            (
                "Gelecek ay için nasıl izin isteyebilirim?",
                "İzni en az iki hafta önceden uygulama üzerinden isteyin. Takım lideriniz beş iş günü içinde "
                "karar verir.",
            ),
        ),
        "SICK_LEAVE_RECOVERY": (
            (
                "Hastayım, ne yapmam gerekiyor?",
                "Geçmiş olsun! Vardiyanız başlamadan önce mağaza müdürünüzü arayın ve uygulamada hastalık "
                "bildirin.",
            ),
            (
                "Doktor raporu gerekli mi?",
                "Kısa süreli hastalıklarda rapor gerekmez. İyileşince takım liderinize haber verin.",
            ),
        ),
        "SALARY_COMPENSATION": (
            (
                "Maaşım bu ay ne zaman yatacak?",
                "Maaşlar her ayın 25'inde ödenir. 25'i hafta sonuna denk gelirse bir önceki cuma ödenir.",
            ),
            (
                "Pazar günü çalışırsam ek ücret alır mıyım?",
                "Evet, pazar ve resmi tatil günlerinde çalışılan saatler %150 olarak ödenir.",
            ),
        ),
        "CONTRACT_HOURS": (
            (
                "Sözleşmemdeki saatlerden fazla çalışabilir miyim?",
                "Ekibinizin ihtiyacı varsa evet. Takım liderinizle konuşun; fazla saatler fazla mesai olarak "
                "ödenir.",
            ),
            (
                "Sözleşmem gelecek ay bitiyor, uzatılacak mı?",
                "Takım lideriniz sözleşmenizin bitiminden en az bir ay önce sizinle uzatmayı konuşacak.",
            ),
        ),
        "ONBOARDING": (
            (
                "Yarın ilk iş günüm, nereye gitmeliyim?",
                "Ekibe hoş geldiniz! Saat 08:45'te personel girişine gelin ve rehberinizi sorun.",
            ),
            (
                "İlk haftamda hangi eğitimleri tamamlamalıyım?",
                "İlk haftanızda:\n- gıda güvenliği e-eğitimi\n- kasa eğitimi\n- yangın güvenliği eğitimi",
            ),
        ),
        "OFFBOARDING": (
            (
                "İstifa etmek istiyorum, ihbar süresi ne kadar?",
                "İhbar süresi bir aydır. İstifanızı yazılı olarak mağaza müdürünüze verin.",
            ),
            (
                "Ayrılırsam kullanmadığım izin günlerine ne olur?",
                "Kullanılmayan izin günleri son maaşınızla birlikte ödenir.",
            ),
        ),
        "WORKWEAR_STAFF_PASS": (
            (
                "Personel kartımı kaybettim, yenisini nasıl alırım?",
                "Yeni bir kartı hizmet masasından isteyebilirsiniz. Yeni kart 10 euro tutar.",
            ),
            (
                "Yeni iş kıyafetini nereden alabilirim? Benimki küçük geldi.",
                "Takım liderinizden sipariş formu isteyin. Kıyafetler bir hafta içinde mağazaya gelir.",
            ),
        ),
        "TEAM_CONTACTS": (
            (
                "Takım liderim kim?",
                "Takım lideriniz uygulamada 'Ekibim' bölümünde telefon numarasıyla yazılıdır.",
            ),
            (
                "Mağaza müdürüne nasıl ulaşabilirim?",
                "Mağaza telefonundan veya uygulamadaki sohbetten ulaşabilirsiniz.",
            ),
        ),
        "PERSONAL_QUESTIONS": (
            (
                "Taşınıyorum, adresimi nasıl değiştiririm?",
                "Adresinizi uygulamada 'Bilgilerim' bölümünden kendiniz değiştirebilirsiniz.",
            ),
            (
                "Banka hesap numaramı değiştirebilir miyim?",
                "Evet, 'Bilgilerim' bölümünden değiştirebilirsiniz.",
            ),
        ),
        "ACCESS_LOGIN": (
            (
                "Uygulamaya giriş yapamıyorum, şifrem yanlış diyor.",
                "Giriş ekranında 'Şifremi unuttum' seçeneğini kullanın; SMS ile bir bağlantı alacaksınız.",
            ),
            (
                "Hesabım kilitlendi, ne yapmalıyım?",
                "Beş hatalı denemeden sonra hesap kilitlenir. 30 dakika sonra otomatik olarak açılır.",
            ),
        ),
        "SOCIAL_QUESTIONS": (
            (
                "Sen gerçek bir insan mısın?",
                "Ben dijital bir asistanım. İşinizle ilgili çoğu soruyu yanıtlayabilirim.",
            ),
            (
                "Türkçe de konuşuyor musun?",
                "Evet! Sorularınızı Türkçe, İngilizce, Felemenkçe veya Almanca sorabilirsiniz.",
            ),
        ),
        "UNRECOGNIZED_OTHER": (
            (
                "Yarın hava nasıl olacak?",
                "Üzgünüm, yalnızca işinizle ilgili sorularda yardımcı olabilirim. Başka bir şey var mı?",
            ),
            ("naber", "Ne demek istediğinizi tam anlayamadım. Sorunuzu başka şekilde sorabilir misiniz?"),
        ),
    },
    followups=(
        ("Uygulamada bunu nerede bulabilirim?", "Uygulamayı açın ve sol üstteki menüye dokunun."),
        ("Bu yarı zamanlı çalışanlar için de geçerli mi?", "Evet, kurallar herkes için aynıdır."),
        (
            "Anlamadım, özür dilerim.\nDaha basit anlatabilir misin?",
            "Tabii. Kısacası her şeyi uygulamada yaparsınız, takım lideriniz onaylar.",
        ),
    ),
    escalations=(
        (
            "Bu hiç yardımcı olmadı. Bir yöneticiyle konuşmak istiyorum.",
            "Anlıyorum. Talebinizi bir yöneticiye ilettim; en kısa sürede sizinle iletişime geçecek.",
        ),
    ),
    hr_referrals=(
        (
            "Bu konuda kiminle konuşabilirim?",
            "Bu soru için lütfen İK (HR) ile {hr} adresinden iletişime geçin.",
        ),
    ),
    closings=(
        ("Teşekkürler, çok yardımcı oldu!", "Rica ederim! İyi günler."),
        ("tamam sağ ol", "Yardımcı olabildiysem ne mutlu. İyi çalışmalar!"),
    ),
)
