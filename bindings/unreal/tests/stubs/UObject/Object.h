// Stand-ins for the Unreal Engine API used by AffettoComponent, for a compile check only; signatures follow UE 5.x
// (5.3/5.4). Never put these headers in a game: they declare, they do not implement.
//
// UObject/Object.h with UObject/ObjectMacros.h and UObject/ObjectPtr.h: the reflection markup (read by
// UnrealHeaderTool, nothing to the compiler), UObject and TObjectPtr.

#pragma once

#include "CoreMinimal.h"

#define UCLASS(...)
#define USTRUCT(...)
#define UPROPERTY(...)
#define UFUNCTION(...)
#define UPARAM(...)
#define GENERATED_BODY(...)
#define GENERATED_USTRUCT_BODY(...)
#define GENERATED_UCLASS_BODY(...)

class UWorld;

class FObjectInitializer
{
public:
	static FObjectInitializer& Get();
};

class UObject
{
public:
	virtual ~UObject();
	virtual UWorld* GetWorld() const;
};

template <typename T>
class TObjectPtr
{
public:
	TObjectPtr();
	TObjectPtr(std::nullptr_t);
	TObjectPtr(T* Object);
	TObjectPtr& operator=(std::nullptr_t);
	TObjectPtr& operator=(T* Object);

	T* Get() const;
	operator T*() const;
	T* operator->() const;
	explicit operator bool() const;
	bool operator!() const;
};
